//! `gateway-proxy`: holds a bot's gateway shards open upstream so the bot itself can restart
//! without re-identifying. Protocol pieces come from [`crate::gateway`]; this module does the
//! I/O, the shard plan and the operator endpoints.
pub mod cache;
pub mod clients;
pub mod config;
pub mod intents;
pub mod nats;
pub mod nats_identify;
pub mod nats_publish;
pub mod nats_rpc;
pub mod nats_stats;
pub mod persist;
pub mod plan;
pub mod relay;
pub mod shard;
pub mod status;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use tokio::sync::{mpsc, watch};

use crate::gateway::client::{ClientConfig, ResumeState};
use crate::gateway::server::ShardInfo;
use crate::listen::{Accepted, Limits, Listener};
use crate::upstream::{Upstream, UpstreamConfig, UpstreamError};
use cache::ShardCache;
use clients::Hub;
use config::Config;
use nats_identify::IdentifyGate;
use persist::{PersistError, SavedShard, SavedState};
use plan::{GatewayBot, PlanError, ShardPlan};
use shard::{ShardEnd, ShardTask};
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
    /// NATS could not be set up.
    #[error(transparent)]
    Nats(#[from] nats::NatsError),
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

/// The shards' upstream sessions to RESUME, and what the state file said the clients saw.
struct Resumes {
    /// Session to RESUME per shard (a NATS checkpoint wins over the state file).
    resumes: HashMap<u32, ResumeState>,
    /// The state file's sessions, for not replaying to clients what they already got.
    from_file: HashMap<u32, ResumeState>,
    /// The NATS checkpoints read at start.
    checkpoints: HashMap<u32, nats::Checkpoint>,
}

/// Reads each shard's NATS checkpoint: written continuously, it is newer than a state file
/// saved at the last clean stop, and survives a crash the file does not. A shard whose cache
/// does not belong to the checkpoint's session gets it rebuilt from the stream.
async fn with_checkpoints(
    nats: Option<&nats::Nats>,
    config: &Config,
    plan: &ShardPlan,
    from_file: HashMap<u32, ResumeState>,
    caches: &mut HashMap<u32, ShardCache>,
) -> Resumes {
    let mut resumes = from_file.clone();
    let mut checkpoints = HashMap::new();
    if let Some(nats) = nats {
        for shard_id in plan.shard_ids() {
            let Some(checkpoint) = nats.checkpoint(shard_id).await else {
                continue;
            };
            tracing::info!(shard_id, session_id = %checkpoint.session_id, seq = checkpoint.seq, "resuming from the NATS checkpoint");
            let same_session = from_file
                .get(&shard_id)
                .is_some_and(|state| state.session_id == checkpoint.session_id);
            if !same_session {
                let mut cache = ShardCache::new(config.cache);
                match nats.rebuild_cache(shard_id, &checkpoint, &mut cache).await {
                    Ok(applied) => {
                        tracing::info!(shard_id, applied, "cache rebuilt from the stream")
                    }
                    Err(err) => tracing::warn!(shard_id, %err, "cache not rebuilt"),
                }
                caches.insert(shard_id, cache);
            }
            resumes.insert(shard_id, checkpoint.resume_state());
            checkpoints.insert(shard_id, checkpoint);
        }
    }
    Resumes {
        resumes,
        from_file,
        checkpoints,
    }
}

/// The NATS name of this process.
fn process_name(config: &Config) -> String {
    format!("gateway-proxy:{}:{}", config.port, std::process::id())
}

/// Serves clients and the operator endpoints on `listener` under `limits` until `stop` turns
/// true.
async fn serve_clients(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let mut server =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    limits.apply(&mut server);
    let at = Listener {
        name: "gateway-proxy",
        server: &server,
        max_connections: limits.max_connections,
        first_byte: limits.head_deadline(),
        drain: Duration::from_secs(1),
    };
    let stopped = async move {
        let _ = stop.wait_for(|stop| *stop).await;
    };
    at.run(listener, stopped, |accepted: Accepted| {
        let app = app.clone();
        hyper::service::service_fn(move |request| {
            accepted.calls.note();
            tower::ServiceExt::oneshot(app.clone(), request)
        })
    })
    .await;
}

/// Runs the proxy until `shutdown` resolves: plans and starts the shards (resuming the sessions
/// saved in `state_path` or checkpointed in NATS), serves clients and the operator endpoints on
/// `config.port` (loopback), publishes dispatches to NATS when configured, then stops the shards
/// resumably and saves their sessions and caches.
pub async fn run(
    config: Config,
    upstream_config: UpstreamConfig,
    state_path: Option<PathBuf>,
    limits: Limits,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProxyError> {
    let upstream = Upstream::new(&upstream_config)?;
    let bot = fetch_gateway_bot(&upstream, &config).await?;
    let process = process_name(&config);
    let nats = match &config.nats {
        Some(nats_config) => Some(nats::connect(nats_config, &process).await?),
        None => None,
    };
    let first_plan = ShardPlan::new(&config, &bot, Some(0))?;
    let saved = load_saved(state_path.as_deref(), first_plan.total)?;
    let (from_file, mut caches) = restore_shards(&config, &first_plan, saved.as_ref());
    let Resumes {
        mut resumes,
        from_file,
        checkpoints,
    } = with_checkpoints(nats.as_ref(), &config, &first_plan, from_file, &mut caches).await;
    let fresh = first_plan.shard_ids().len() as u32 - resumes.len() as u32;
    let plan = ShardPlan::new(&config, &bot, Some(fresh))?;
    tracing::info!(shards = ?plan.shard_ids(), total = plan.total, resuming = resumes.len(),
        max_concurrency = plan.max_concurrency, gateway = %plan.gateway_url,
        nats = config.nats.is_some(), "starting shards");
    let board = Arc::new(ShardBoard::new(plan.shard_ids(), plan.total));
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, config.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ProxyError::Bind { addr, source })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    // Bounded: a burst of GUILD_CREATEs (each ~10x its text once parsed) waits in the upstream
    // sockets instead of piling up parsed in memory ahead of the relay.
    let (events_tx, events_rx) = mpsc::channel(SHARD_EVENT_QUEUE);
    let identify = IdentifyGate::new(bot.session_start_limit, nats.as_ref(), &process);
    let config = Arc::new(config);
    let (hub, command_rxs) = build_hub(&config, &plan, caches, saved);
    let resuming = resumes.clone();
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
    let (nats_relay, nats_tasks) = match &nats {
        Some(nats) => {
            let (relay, tasks) = start_nats_side(
                nats,
                &hub,
                &plan,
                &process,
                checkpoints,
                &resuming,
                &from_file,
            )
            .await?;
            (Some(relay), Some(tasks))
        }
        None => (None, None),
    };
    let app = status::router(
        board.clone(),
        hub.clone(),
        nats.as_ref().map(|nats| nats.stats.clone()),
    )
    .merge(clients::router(hub.clone()));
    let http = tokio::spawn(serve_clients(listener, app, limits, stop_rx.clone()));
    let relay = tokio::spawn(relay::relay_events(
        events_rx,
        board.clone(),
        hub.clone(),
        nats_relay,
    ));
    let failure = supervise(&mut shards, shutdown).await;
    let _ = stop_tx.send(true);
    let sessions = stop_clients_and_shards(&hub, &mut shards).await;
    let _ = http.await;
    // Let the relay apply what the shards delivered before they stopped.
    let _ = relay.await;
    // The relay dropped its handle: the publisher drains what is buffered, then checkpoints.
    if let Some((publisher, mut rpc)) = nats_tasks {
        let _ = publisher.await;
        rpc.abort_all();
    }
    if let Some(path) = &state_path {
        save_state(path, plan.total, &hub, sessions)?;
    }
    match failure {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// The clients' hub with each planned shard's command queue (restoring saved client sessions);
/// the queues' receiving ends go to the shard tasks.
#[allow(clippy::type_complexity)]
fn build_hub(
    config: &Arc<Config>,
    plan: &ShardPlan,
    caches: HashMap<u32, ShardCache>,
    saved: Option<SavedState>,
) -> (
    Arc<Hub>,
    Vec<(u32, mpsc::UnboundedReceiver<crate::gateway::GatewayPayload>)>,
) {
    let mut commands = HashMap::new();
    let mut command_rxs = Vec::new();
    for shard_id in plan.shard_ids() {
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        commands.insert(shard_id, command_tx);
        command_rxs.push((shard_id, command_rx));
    }
    let hub = Hub::new(config.clone(), plan.clone(), caches, commands);
    if let Some(state) = saved {
        let restored = hub.restore_clients(state.clients);
        if restored > 0 {
            tracing::info!(restored, "client sessions restored; bots can RESUME");
        }
    }
    (hub, command_rxs)
}

/// Closes the clients (resumably: they come back and RESUME against the restarted proxy) before
/// the shards stop, so what arrives meanwhile still lands in their replay buffers; then waits
/// for the shards and returns their resumable sessions.
async fn stop_clients_and_shards(
    hub: &Hub,
    shards: &mut tokio::task::JoinSet<(u32, ShardEnd)>,
) -> HashMap<u32, ResumeState> {
    hub.close_all(clients::SHUTDOWN_CLOSE);
    let flushed = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    while hub.open_connections() > 0 && tokio::time::Instant::now() < flushed {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    resumable_sessions(shards).await
}

/// The publisher, the checkpoint writer and the RPC subscriptions; the relay's NATS side.
async fn start_nats_side(
    nats: &nats::Nats,
    hub: &Arc<Hub>,
    plan: &ShardPlan,
    process: &str,
    checkpoints: HashMap<u32, nats::Checkpoint>,
    resuming: &HashMap<u32, ResumeState>,
    from_file: &HashMap<u32, ResumeState>,
) -> Result<(relay::NatsRelay, NatsTasks), ProxyError> {
    let progress = Arc::new(nats_publish::Checkpoints::new(checkpoints));
    let lanes = nats
        .publish_lanes(plan.shard_ids().len().min(nats_publish::MAX_PUBLISH_LANES))
        .await?;
    let (handle, publisher) = nats_publish::spawn(nats, lanes, progress);
    let rpc = nats_rpc::serve(nats, hub.clone(), plan, process.to_owned()).await?;
    Ok((
        relay::NatsRelay::new(handle, resuming, from_file),
        (publisher, rpc),
    ))
}

/// The publisher task and the RPC tasks.
type NatsTasks = (tokio::task::JoinHandle<()>, tokio::task::JoinSet<()>);

/// Waits for `shutdown` or a shard that cannot go on; returns the failure, if any.
async fn supervise(
    shards: &mut tokio::task::JoinSet<(u32, ShardEnd)>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Option<ProxyError> {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return None,
            joined = shards.join_next() => match joined {
                None => return None,
                Some(Ok((shard_id, ShardEnd::Fatal(code)))) => {
                    return Some(ProxyError::ShardFailed {
                        shard_id,
                        reason: format!("upstream closed with {} ({})", code.code(), code.explanation()),
                    });
                }
                Some(Ok((shard_id, end))) => tracing::warn!(shard_id, ?end, "shard ended"),
                Some(Err(err)) => tracing::error!(%err, "shard task failed"),
            },
        }
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
