//! `serve` without a proxy: open (or reset) the backend's store, seed it, bind `--api`, print the
//! banner, serve REST and the gateway until Ctrl-C / SIGTERM, flush.
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::net::TcpListener;

use super::durable::{backend_router, Durability};
use super::{shutdown_signal, ProxyRunError};
use crate::backend::control::ControlSettings;
use crate::backend::gateway::{Gateway, GatewayConfig};
use crate::backend::model::User;
use crate::backend::state::{AppState, Config};
use crate::backend::store::{Store, StoreError};
use crate::backend::world::{self, FixtureError};

/// What `serve` needs to start.
#[derive(Debug, Clone)]
pub(crate) struct ServeOptions {
    pub api: SocketAddr,
    pub data: PathBuf,
    pub fixture: Option<FixtureSource>,
    pub reset: bool,
    pub config: Config,
    /// Stop when standard input closes (lets a supervisor or a test harness own the lifetime).
    pub exit_on_stdin_close: bool,
    /// Gateway server settings (heartbeat interval, resume window, replay buffer...).
    pub gateway: GatewayConfig,
    /// The desktop updater's answers (also served on `--api`).
    pub client: crate::backend::routes::client::ClientConfig,
    /// When writes are acknowledged.
    pub durability: Durability,
    /// Head deadline and connection cap of the API listener.
    pub limits: crate::listen::Limits,
    /// Origin of attachment URLs (`--public-url`); default `http://` + the API address.
    pub public_url: Option<String>,
}

/// Where `serve`'s fixture comes from.
#[derive(Debug, Clone)]
pub(crate) enum FixtureSource {
    /// A fixture file (`--fixture`).
    File(PathBuf),
    /// A fixture built in memory (`--from-recordings`): where from, and its JSON.
    Built { origin: String, json: Vec<u8> },
}

impl FixtureSource {
    /// Validates and applies the fixture to `store`.
    fn load(&self, store: &Store) -> Result<world::FixtureSummary, FixtureError> {
        match self {
            FixtureSource::File(path) => world::load_fixture_file(store, path),
            FixtureSource::Built { origin, json } => world::load_fixture_bytes(store, json, origin),
        }
    }

    /// How the banner names it.
    fn describe(&self) -> String {
        match self {
            FixtureSource::File(path) => format!("fixture {}", path.display()),
            FixtureSource::Built { origin, .. } => origin.clone(),
        }
    }
}

/// Why `serve` (with or without `--listen`) could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Fixture(#[from] FixtureError),
    #[error(
        "refusing to --reset {0}: it exists but does not look like a discord-mitm data directory"
    )]
    NotADataDir(String),
    #[error("cannot reset {path}: {source}")]
    Reset {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Bind(String),
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Proxy(#[from] ProxyRunError),
}

/// Removes a data directory, but only one that sled created (never an arbitrary folder).
fn reset_data_dir(dir: &Path) -> Result<(), ServeError> {
    if !dir.exists() {
        return Ok(());
    }
    let looks_like_sled = dir.join("conf").exists() || dir.join("db").exists();
    let empty = std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !looks_like_sled && !empty {
        return Err(ServeError::NotADataDir(dir.display().to_string()));
    }
    std::fs::remove_dir_all(dir).map_err(|source| ServeError::Reset {
        path: dir.display().to_string(),
        source,
    })
}

/// Opens the store and seeds it (fixture first; demo world when empty and no fixture).
pub(crate) fn prepare_store(options: &ServeOptions) -> Result<(Store, String), ServeError> {
    if let Some(fixture) = &options.fixture {
        // Validate against a scratch store first so a bad fixture never touches real data.
        let scratch = Store::temporary()?;
        fixture.load(&scratch)?;
    }
    if options.reset {
        reset_data_dir(&options.data)?;
    }
    let store = Store::open(&options.data)?;
    let origin = if let Some(fixture) = &options.fixture {
        let summary = fixture.load(&store)?;
        format!(
            "{} ({} users, {} guilds, {} channels)",
            fixture.describe(),
            summary.users,
            summary.guilds,
            summary.channels
        )
    } else if store.is_empty() {
        world::create_demo_world(&store)?;
        "a new demo world".to_string()
    } else {
        format!("existing data in {}", options.data.display())
    };
    Ok((store, origin))
}

/// The start-up banner: where to point a bot, and the tokens to use.
pub(crate) fn banner(
    store: &Store,
    addr: SocketAddr,
    origin: &str,
    durability: Durability,
    control: Option<&ControlSettings>,
) -> Result<String, StoreError> {
    let mut out = banner_details(store, addr, origin, durability, control)?;
    let _ = writeln!(out, "Press Ctrl-C to stop.");
    Ok(out)
}

/// The banner without its closing "Press Ctrl-C" line, for callers that add their own lines.
pub(crate) fn banner_details(
    store: &Store,
    addr: SocketAddr,
    origin: &str,
    durability: Durability,
    control: Option<&ControlSettings>,
) -> Result<String, StoreError> {
    let mut out = String::new();
    let base = format!("http://{addr}/api/v10");
    let _ = writeln!(out, "discord-mitm serve listening on http://{addr}");
    let _ = writeln!(out, "  data:     {origin}");
    if let Some(line) = durability.banner_line() {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "  REST:     {base}   (also /api and /api/v6 … /api/v9)"
    );
    let _ = writeln!(
        out,
        "  gateway:  ws://{addr}   (advertised by GET {base}/gateway/bot)"
    );
    if let Some(control) = control {
        let _ = writeln!(
            out,
            "  control:  http://{addr}/_mitm/   Authorization: Control {}   (loopback only; docs/testing-your-bot.md)",
            control.token
        );
        if crate::backend::clock::seeded() {
            let _ = writeln!(
                out,
                "            deterministic: seeded ids and tokens, clock frozen at {} (POST /_mitm/clock moves it)",
                crate::backend::snowflake::iso8601_from_ms(crate::backend::clock::now_ms())
            );
        }
    }
    let users: Vec<User> = store.users.all()?;
    let _ = writeln!(out, "  accounts:");
    for user in users.iter().take(20) {
        let Some(credentials) = store.credentials.get(user.id)? else {
            continue;
        };
        let header = if user.bot {
            format!("Authorization: Bot {}", credentials.token)
        } else {
            format!("Authorization: {}", credentials.token)
        };
        let login = credentials
            .email
            .as_deref()
            .map(|e| format!("  (login: {e})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    {:4} {:20} id {:20}  {header}{login}",
            if user.bot { "bot" } else { "user" },
            user.username,
            user.id.to_string()
        );
    }
    if users.len() > 20 {
        let _ = writeln!(out, "    … and {} more", users.len() - 20);
    }
    if let Some(bot) = users.iter().find(|u| u.bot) {
        if let Some(credentials) = store.credentials.get(bot.id)? {
            let _ = writeln!(
                out,
                "  try:      curl -H 'Authorization: Bot {}' {base}/users/@me",
                credentials.token
            );
        }
    }
    Ok(out)
}

/// The backend ready to serve: its store seeded, its state, `--api` bound.
pub(super) struct Backend {
    pub(super) store: Store,
    pub(super) state: AppState,
    pub(super) listener: TcpListener,
    pub(super) addr: SocketAddr,
    /// Where the data came from, for the banner.
    pub(super) origin: String,
}

impl Backend {
    /// Opens and seeds the store, builds the state and binds `--api`.
    pub(super) async fn open(options: &ServeOptions) -> Result<Backend, ServeError> {
        let (store, origin) = prepare_store(options)?;
        let state = AppState::new(store.clone(), options.config.clone());
        if state.control.is_some() {
            // The world `POST /_mitm/reset` goes back to.
            crate::backend::services::control::take_baseline(&state)
                .map_err(|e| ServeError::Bind(format!("cannot snapshot the world: {e}")))?;
        }
        let listener = TcpListener::bind(options.api).await.map_err(|err| {
            ServeError::Bind(crate::proxy::bind_error(options.api, &err, "--api"))
        })?;
        let addr = listener.local_addr()?;
        Ok(Backend {
            store,
            state,
            listener,
            addr,
            origin,
        })
    }

    /// Starts the gateway on the backend's state; the router answers REST and gateway upgrades.
    pub(super) fn start_gateway(&self, options: &ServeOptions) -> (Gateway, axum::Router) {
        let gateway = Gateway::start(self.state.clone(), options.gateway.clone());
        let public_url = options
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.addr));
        let app = backend_router(self.state.clone(), options.durability, Some(public_url))
            .merge(crate::backend::routes::client::routes(
                options.client.clone(),
            ))
            .merge(gateway.router());
        (gateway, app)
    }
}

/// Runs `serve` until interrupted.
pub(crate) async fn run(options: ServeOptions) -> Result<(), ServeError> {
    let backend = Backend::open(&options).await?;
    crate::backend::services::polls::resume_finalisers(&backend.state)?;
    print!(
        "{}",
        banner(
            &backend.store,
            backend.addr,
            &backend.origin,
            options.durability,
            options.config.control.as_ref(),
        )?
    );
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let (gateway, app) = backend.start_gateway(&options);
    super::listener::serve_api(backend.listener, app, options.limits, async move {
        shutdown_signal(options.exit_on_stdin_close).await;
        // Bots get op 7 RECONNECT before the listener goes away.
        gateway.shutdown(std::time::Duration::from_secs(2)).await;
    })
    .await;
    // After a failed write (said when it happened) there is nothing more to flush.
    if !backend.store.write_halted() {
        backend.store.flush()?;
        tracing::info!("serve stopped; data flushed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_refuses_directories_that_are_not_ours() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("thesis.tex"), "precious").unwrap();
        assert!(matches!(
            reset_data_dir(dir.path()),
            Err(ServeError::NotADataDir(_))
        ));
        assert!(dir.path().join("thesis.tex").exists());
    }

    #[test]
    fn a_bad_fixture_leaves_existing_data_alone() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let fixture = dir.path().join("bad.json");
        std::fs::write(&fixture, r#"{"users": [{"id": "1"}]}"#).unwrap();
        let mut options = ServeOptions {
            api: "127.0.0.1:0".parse().unwrap(),
            data: data.clone(),
            fixture: None,
            reset: false,
            config: Config::default(),
            exit_on_stdin_close: false,
            gateway: Default::default(),
            client: Default::default(),
            durability: Durability::Durable,
            limits: Default::default(),
            public_url: None,
        };
        let (store, _) = prepare_store(&options).unwrap();
        let users_before = store.users.all().unwrap().len();
        drop(store);
        options.fixture = Some(FixtureSource::File(fixture));
        options.reset = true;
        let err = prepare_store(&options).err().unwrap();
        assert!(err.to_string().contains("$.users[0]"), "{err}");
        let store = Store::open(&data).unwrap();
        assert_eq!(store.users.all().unwrap().len(), users_before);
    }
}
