//! The `serve` command's work: open (or reset) the store, seed it, bind, print the banner, serve
//! until Ctrl-C / SIGTERM, flush.
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::model::User;
use super::state::{AppState, Config};
use super::store::{Store, StoreError};
use super::world::{self, FixtureError};

/// What `serve` needs to start.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub api: SocketAddr,
    pub data: PathBuf,
    pub fixture: Option<PathBuf>,
    pub reset: bool,
    pub config: Config,
    /// Stop when standard input closes (lets a supervisor or a test harness own the lifetime).
    pub exit_on_stdin_close: bool,
    /// Gateway server settings (heartbeat interval, resume window, replay buffer...).
    pub gateway: super::gateway::GatewayConfig,
}

/// Why `serve` could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
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
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
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
pub fn prepare_store(options: &ServeOptions) -> Result<(Store, String), ServeError> {
    if let Some(fixture) = &options.fixture {
        // Validate against a scratch store first so a bad fixture never touches real data.
        let scratch = Store::temporary()?;
        world::load_fixture_file(&scratch, fixture)?;
    }
    if options.reset {
        reset_data_dir(&options.data)?;
    }
    let store = Store::open(&options.data)?;
    let origin = if let Some(fixture) = &options.fixture {
        let summary = world::load_fixture_file(&store, fixture)?;
        format!(
            "fixture {} ({} users, {} guilds, {} channels)",
            fixture.display(),
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
pub fn banner(store: &Store, addr: SocketAddr, origin: &str) -> Result<String, StoreError> {
    let mut out = banner_details(store, addr, origin)?;
    let _ = writeln!(out, "Press Ctrl-C to stop.");
    Ok(out)
}

/// The banner without its closing "Press Ctrl-C" line, for callers that add their own lines.
pub fn banner_details(store: &Store, addr: SocketAddr, origin: &str) -> Result<String, StoreError> {
    let mut out = String::new();
    let base = format!("http://{addr}/api/v10");
    let _ = writeln!(out, "discord-mitm serve listening on http://{addr}");
    let _ = writeln!(out, "  data:     {origin}");
    let _ = writeln!(
        out,
        "  REST:     {base}   (also /api and /api/v6 … /api/v9)"
    );
    let _ = writeln!(
        out,
        "  gateway:  ws://{addr}   (advertised by GET {base}/gateway/bot)"
    );
    let users: Vec<User> = store.users.values(b"")?;
    let _ = writeln!(out, "  accounts:");
    for user in users.iter().take(20) {
        let Some(credentials) = store.credentials.get(user.id.be())? else {
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
        if let Some(credentials) = store.credentials.get(bot.id.be())? {
            let _ = writeln!(
                out,
                "  try:      curl -H 'Authorization: Bot {}' {base}/users/@me",
                credentials.token
            );
        }
    }
    Ok(out)
}

/// Runs `serve` until interrupted.
pub async fn run(options: ServeOptions) -> Result<(), ServeError> {
    let (store, origin) = prepare_store(&options)?;
    let state = AppState::new(store.clone(), options.config.clone());
    super::services::polls::resume_finalisers(&state)?;
    let listener = tokio::net::TcpListener::bind(options.api)
        .await
        .map_err(|source| ServeError::Bind {
            addr: options.api,
            source,
        })?;
    let addr = listener.local_addr()?;
    print!("{}", banner(&store, addr, &origin)?);
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let gateway = super::gateway::Gateway::start(state.clone(), options.gateway.clone());
    let app = super::router(state).merge(gateway.router());
    use axum::serve::ListenerExt as _;
    // Answers are small and written whole; do not let Nagle hold them back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal(options.exit_on_stdin_close).await;
            // Bots get op 7 RECONNECT before the listener goes away.
            gateway.shutdown(std::time::Duration::from_secs(2)).await;
        })
        .await?;
    store.flush()?;
    tracing::info!("serve stopped; data flushed");
    Ok(())
}

/// Ctrl-C, SIGTERM, or (when asked) standard input closing.
pub async fn shutdown_signal(watch_stdin: bool) {
    let stdin_closed = async move {
        if !watch_stdin {
            return std::future::pending::<()>().await;
        }
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            use std::io::Read as _;
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            let _ = tx.send(());
        });
        let _ = rx.await;
    };
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
        _ = stdin_closed => {},
    }
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
        };
        let (store, _) = prepare_store(&options).unwrap();
        let users_before = store.users.values(b"").unwrap().len();
        drop(store);
        options.fixture = Some(fixture);
        options.reset = true;
        let err = prepare_store(&options).err().unwrap();
        assert!(err.to_string().contains("$.users[0]"), "{err}");
        let store = Store::open(&data).unwrap();
        assert_eq!(store.users.values(b"").unwrap().len(), users_before);
    }
}
