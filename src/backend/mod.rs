//! The reimplemented Discord backend (`serve`): REST API v6–v10 on an embedded sled store, with
//! Discord's permissions, errors and rate limits, and an event bus the gateway subscribes to.
//!
//! Entry points for other modules:
//! - [`router`]`(state)` — the axum `Router` (call in-process, or serve it);
//! - [`AppState::new`]`(store, config)` — the state it runs on; `state.bus.subscribe()` yields
//!   every dispatch event ([`events::Event`]) in order;
//! - [`server::run`] — the `serve` command: open the store, seed it, listen, print the banner.
pub mod accounts;
pub mod coverage;
pub mod error;
pub mod events;
pub mod extra;
pub mod extract;
pub mod gateway;
pub mod model;
pub mod permissions;
pub mod poll;
pub mod ratelimit;
pub mod render;
pub mod routes;
pub mod server;
pub mod services;
pub mod snowflake;
pub mod state;
pub mod store;
pub mod voice;
pub mod world;

pub use error::ApiError;
pub use events::{Audience, Event, EventBus};
pub use routes::router;
pub use snowflake::Snowflake;
pub use state::{AppState, Config};
pub use store::Store;

/// A random invite code like Discord's (8 characters of letters and digits).
pub fn invite_code() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
