//! Which links a chain has, for each command: `record` forwards upstream only; `serve` puts the
//! backend first and, per `--fallback`, recordings and upstream after it. Decided here and
//! nowhere else.
use std::str::FromStr;
use std::sync::Arc;

use super::backend::BackendResponder;
use super::identity::Identity;
use super::replay::{ReplayOptions, ReplayResponder};
use super::upstream::UpstreamResponder;
use super::websocket::WebSocketRelay;
use super::{ChainLink, Pipeline};
use crate::store::{Recorder, Store};
use crate::upstream::Upstream;

/// What answers after the backend declines (`--fallback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fallback {
    /// Recorded responses are replayed.
    pub recorded: bool,
    /// Requests are forwarded upstream (and recorded).
    pub forward: bool,
}

impl Default for Fallback {
    fn default() -> Self {
        Fallback {
            recorded: true,
            forward: true,
        }
    }
}

/// A `--fallback` value that is not one of the accepted forms.
#[derive(Debug, thiserror::Error)]
#[error("invalid fallback {0:?}: expected recorded,forward | recorded | forward | none")]
pub struct FallbackError(String);

impl FromStr for Fallback {
    type Err = FallbackError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut fallback = Fallback {
            recorded: false,
            forward: false,
        };
        if text.trim() == "none" {
            return Ok(fallback);
        }
        for part in text.split(',').map(str::trim) {
            match part {
                "recorded" if !fallback.recorded && !fallback.forward => fallback.recorded = true,
                "forward" if !fallback.forward => fallback.forward = true,
                _ => return Err(FallbackError(text.to_string())),
            }
        }
        Ok(fallback)
    }
}

/// What `serve`'s chain is made of besides the backend.
pub struct ServeLinks {
    /// What answers after the backend.
    pub fallback: Fallback,
    /// The recordings replayed from.
    pub recordings: Option<Arc<Store>>,
    /// How recordings are matched and which are replayed.
    pub replay: ReplayOptions,
    /// The client to real Discord.
    pub upstream: Option<Upstream>,
    /// Where exchanges are recorded.
    pub recorder: Option<Recorder>,
    /// The identity rules replay and forwarding apply.
    pub identity: Arc<Identity>,
}

/// The chain `serve` uses: backend → recordings → upstream → Discord's 404 (added by
/// [`Pipeline`]); every answer tagged with its source, one identity through all of them.
pub fn serve_chain(backend: BackendResponder, links: ServeLinks) -> Pipeline {
    let ServeLinks {
        fallback,
        recordings,
        replay,
        upstream,
        recorder,
        identity,
    } = links;
    let mut chain: Vec<Arc<dyn ChainLink>> = vec![Arc::new(backend)];
    if fallback.recorded {
        if let Some(store) = recordings {
            chain.push(Arc::new(
                ReplayResponder::new(store, replay).with_identity(Arc::clone(&identity)),
            ));
        }
    }
    if fallback.forward {
        if let Some(upstream) = upstream {
            let relay = Arc::new(
                WebSocketRelay::new(recorder.clone()).with_identity(Arc::clone(&identity)),
            );
            chain.push(Arc::new(
                UpstreamResponder::new(upstream, relay)
                    .ending_the_chain()
                    .with_identity(identity),
            ));
        }
    }
    Pipeline::new(chain, recorder, true)
}

/// The chain `record` uses: upstream only, answers left untagged.
pub fn record_chain(upstream: Upstream, recorder: Option<Recorder>) -> Pipeline {
    let relay = Arc::new(WebSocketRelay::new(recorder.clone()));
    let chain: Vec<Arc<dyn ChainLink>> = vec![Arc::new(UpstreamResponder::new(upstream, relay))];
    Pipeline::new(chain, recorder, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_accepts_the_documented_forms_only() {
        let parse = |t: &str| t.parse::<Fallback>().map(|f| (f.recorded, f.forward)).ok();
        assert_eq!(parse("recorded,forward"), Some((true, true)));
        assert_eq!(parse("recorded"), Some((true, false)));
        assert_eq!(parse("forward"), Some((false, true)));
        assert_eq!(parse("none"), Some((false, false)));
        assert_eq!(parse("forward,recorded"), None);
        assert_eq!(parse("upstream"), None);
        assert_eq!(parse(""), None);
    }
}
