//! `gateway-proxy`: holds a bot's gateway shards open upstream so the bot itself can restart
//! without re-identifying. Protocol pieces come from [`crate::gateway`]; this module does the
//! I/O, the shard plan and the operator endpoints.
pub mod cache;
pub mod clients;
pub mod config;
pub mod intents;
pub mod persist;
pub mod plan;
pub mod shard;
pub mod status;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use tokio::sync::{mpsc, watch, Mutex};

use crate::gateway::client::{ClientConfig, ResumeState};
use crate::gateway::ratelimit::IdentifyLimiter;
use crate::gateway::server::ShardInfo;
use crate::upstream::{Upstream, UpstreamConfig, UpstreamError};
use cache::ShardCache;
use clients::Hub;
use config::Config;
use persist::{PersistError, SavedShard, SavedState};
use plan::{GatewayBot, PlanError, ShardPlan};
use shard::{ShardEnd, ShardEvent, ShardTask};
use status::ShardBoard;

/// Upstream events (all shards) waiting for the relay.
const SHARD_EVENT_QUEUE: usize = 32;

/// Why the proxy could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// Upstream could not be reached.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// GET /gateway/bot did not succeed.
    #[error("GET {url} answered {status}: {body}")]
    GatewayBotStatus {
        /// The URL asked.
        url: String,
        /// HTTP status it answered.
        status: u16,
        /// Response body.
        body: String,
    },
    /// The shards cannot be planned.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// The listening port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address to listen on.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The state file could not be read or written.
    #[error(transparent)]
    Persist(#[from] PersistError),
    /// A shard was refused upstream for good.
    #[error("shard {shard_id} stopped: {reason}")]
    ShardFailed {
        /// The shard.
        shard_id: u32,
        /// Why Discord refused it.
        reason: String,
    },
}

/// Asks upstream for the gateway URL, the recommended shard count and the identify budget.
pub async fn fetch_gateway_bot(
    upstream: &Upstream,
    config: &Config,
) -> Result<GatewayBot, ProxyError> {
    let url = format!("{}/gateway/bot", config.upstream_api.trim_end_matches('/'));
    let request = http::Request::get(&url)
        .header("authorization", config.authorization())
        .header("user-agent", "DiscordBot (discord-mitm gateway-proxy, 0.1)")
        .body(
            Empty::<Bytes>::new()
                .map_err(|never| match never {})
                .boxed(),
        )
        .map_err(|err| UpstreamError::BadUrl {
            url: url.clone(),
            reason: err.to_string(),
        })?;
    let response = upstream.request(request).await?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|err| UpstreamError::Request {
            url: url.clone(),
            reason: err.to_string(),
        })?
        .to_bytes();
    if status != 200 {
        return Err(ProxyError::GatewayBotStatus {
            url,
            status,
            body: String::from_utf8_lossy(&body).chars().take(300).collect(),
        });
    }
    Ok(GatewayBot::parse(&body)?)
}

/// The client configuration of shard `shard_id` under `plan`.
pub fn shard_client_config(config: &Config, plan: &ShardPlan, shard_id: u32) -> ClientConfig {
    let mut client = ClientConfig::new(config.bare_token(), plan.gateway_url.clone());
    client.intents = Some(config.intents);
    client.shard = Some(ShardInfo {
        id: shard_id,
        count: plan.total,
    });
    client.max_concurrency = plan.max_concurrency;
    client.presence = Some(config.presence(shard_id));
    client.large_threshold = Some(250);
    client.jitter_seed = rand::random();
    client
}

/// Runs the proxy until `shutdown` resolves: plans and starts the shards (resuming the sessions
/// saved in `state_path`), serves clients and the operator endpoints on `config.port`
/// (loopback), then stops the shards resumably and saves their sessions and caches.
pub async fn run(
    config: Config,
    upstream_config: UpstreamConfig,
    state_path: Option<PathBuf>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProxyError> {
    let upstream = Upstream::new(&upstream_config)?;
    let bot = fetch_gateway_bot(&upstream, &config).await?;
    let first_plan = ShardPlan::new(&config, &bot, Some(0))?;
    let saved = load_saved(state_path.as_deref(), first_plan.total)?;
    let (mut resumes, caches) = restore_shards(&config, &first_plan, saved.as_ref());
    let fresh = first_plan.shard_ids().len() as u32 - resumes.len() as u32;
    let plan = ShardPlan::new(&config, &bot, Some(fresh))?;
    tracing::info!(
        shards = ?plan.shard_ids(),
        total = plan.total,
        resuming = resumes.len(),
        max_concurrency = plan.max_concurrency,
        gateway = %plan.gateway_url,
        "starting shards"
    );
    let board = Arc::new(ShardBoard::new(plan.shard_ids(), plan.total));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ProxyError::Bind { addr, source })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    // Bounded: a burst of GUILD_CREATEs (each ~10x its text once parsed) waits in the upstream
    // sockets instead of piling up parsed in memory ahead of the relay.
    let (events_tx, events_rx) = mpsc::channel(SHARD_EVENT_QUEUE);
    let identify = Arc::new(Mutex::new(IdentifyLimiter::new(plan.max_concurrency)));
    let mut commands = HashMap::new();
    let mut command_rxs = Vec::new();
    for shard_id in plan.shard_ids() {
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        commands.insert(shard_id, command_tx);
        command_rxs.push((shard_id, command_rx));
    }
    let config = Arc::new(config);
    let hub = Hub::new(config.clone(), plan.clone(), caches, commands);
    if let Some(state) = saved {
        let restored = hub.restore_clients(state.clients);
        if restored > 0 {
            tracing::info!(restored, "client sessions restored; bots can RESUME");
        }
    }
    let mut shards = tokio::task::JoinSet::new();
    for (shard_id, command_rx) in command_rxs {
        let task = ShardTask {
            upstream: upstream.clone(),
            config: shard_client_config(&config, &plan, shard_id),
            resume: resumes.remove(&shard_id),
            identify: identify.clone(),
            events: events_tx.clone(),
            commands: command_rx,
            shutdown: stop_rx.clone(),
        };
        shards.spawn(async move { (shard_id, task.run().await) });
    }
    drop(events_tx);
    let app = status::router(board.clone(), hub.clone()).merge(clients::router(hub.clone()));
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|stop| *stop).await;
            })
            .await;
    });
    let relay = tokio::spawn(relay_events(events_rx, board.clone(), hub.clone()));
    tokio::pin!(shutdown);
    let mut failure = None;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            joined = shards.join_next() => match joined {
                None => break,
                Some(Ok((shard_id, ShardEnd::Fatal(code)))) => {
                    failure = Some(ProxyError::ShardFailed {
                        shard_id,
                        reason: format!("upstream closed with {} ({})", code.code(), code.explanation()),
                    });
                    break;
                }
                Some(Ok((shard_id, end))) => tracing::warn!(shard_id, ?end, "shard ended"),
                Some(Err(err)) => tracing::error!(%err, "shard task failed"),
            },
        }
    }
    let _ = stop_tx.send(true);
    // Clients are told to come back (they RESUME once the proxy is up again) before the
    // shards stop; what arrives meanwhile still lands in their replay buffers.
    hub.close_all(clients::SHUTDOWN_CLOSE);
    let flushed = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while hub.open_connections() > 0 && tokio::time::Instant::now() < flushed {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let sessions = resumable_sessions(&mut shards).await;
    let _ = http.await;
    // Let the relay apply what the shards delivered before they stopped.
    let _ = relay.await;
    if let Some(path) = &state_path {
        save_state(path, plan.total, &hub, sessions)?;
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// The saved state at `path`, if there is one and it was saved for `total_shards` shards.
fn load_saved(
    path: Option<&std::path::Path>,
    total_shards: u32,
) -> Result<Option<SavedState>, ProxyError> {
    let saved = match path {
        Some(path) => SavedState::load(path)?,
        None => None,
    };
    Ok(saved.filter(|state| {
        let usable = state.total_shards == total_shards;
        if !usable {
            tracing::warn!(
                saved = state.total_shards,
                now = total_shards,
                "saved sessions belong to another shard count; identifying afresh"
            );
        }
        usable
    }))
}

/// Each planned shard's saved upstream session (to RESUME) and its cache, restored from the
/// saved state or empty.
fn restore_shards(
    config: &Config,
    plan: &ShardPlan,
    saved: Option<&SavedState>,
) -> (HashMap<u32, ResumeState>, HashMap<u32, ShardCache>) {
    let mut resumes = HashMap::new();
    let mut caches = HashMap::new();
    for shard_id in plan.shard_ids() {
        let saved_shard = saved.and_then(|state| state.shards.get(&shard_id));
        match saved_shard {
            Some(shard) => {
                if let Some(session) = &shard.session {
                    resumes.insert(shard_id, session.clone());
                }
                caches.insert(shard_id, ShardCache::restore(config.cache, &shard.cache));
            }
            None => {
                caches.insert(shard_id, ShardCache::new(config.cache));
            }
        }
    }
    (resumes, caches)
}

/// Applies what the shards report: state and counters to the status board, dispatches to the
/// clients' hub. Ends when every shard has dropped its sender.
async fn relay_events(
    mut events_rx: mpsc::Receiver<ShardEvent>,
    board: Arc<ShardBoard>,
    hub: Arc<Hub>,
) {
    while let Some(event) = events_rx.recv().await {
        match event {
            ShardEvent::State { shard_id, state } => board.set_state(shard_id, state),
            ShardEvent::Identified { shard_id } => board.count_identify(shard_id),
            ShardEvent::Latency { shard_id, latency } => board.set_latency(shard_id, latency),
            ShardEvent::Dispatch { shard_id, payload } => {
                board.count_event(shard_id, payload.t.as_deref().unwrap_or("?"));
                hub.relay(shard_id, payload);
            }
        }
    }
}

/// Waits for the stopping shards and keeps the upstream sessions they closed resumably.
async fn resumable_sessions(
    shards: &mut tokio::task::JoinSet<(u32, ShardEnd)>,
) -> HashMap<u32, ResumeState> {
    let mut sessions = HashMap::new();
    while let Some(joined) = shards.join_next().await {
        if let Ok((shard_id, ShardEnd::Stopped(Some(state)))) = joined {
            tracing::info!(shard_id, session_id = %state.session_id, seq = ?state.seq, "shard closed resumably");
            sessions.insert(shard_id, state);
        }
    }
    sessions
}

/// Writes the shards' upstream sessions and caches and the clients' sessions to `path`.
fn save_state(
    path: &std::path::Path,
    total_shards: u32,
    hub: &Hub,
    mut sessions: HashMap<u32, ResumeState>,
) -> Result<(), ProxyError> {
    let mut state = SavedState {
        version: persist::STATE_VERSION,
        total_shards,
        shards: Default::default(),
        clients: hub.client_snapshots(),
    };
    for (shard_id, cache) in hub.cache_snapshots() {
        state.shards.insert(
            shard_id,
            SavedShard {
                session: sessions.remove(&shard_id),
                cache,
            },
        );
    }
    state.save(path)?;
    tracing::info!(
        path = %path.display(),
        clients = state.clients.len(),
        "saved shard sessions, caches and client sessions"
    );
    Ok(())
}
