//! The reimplemented Discord backend (`serve`): REST API v6–v10 on an embedded sled store, with
//! Discord's permissions, errors and rate limits, and an event bus the gateway subscribes to.
//!
//! Entry points for other modules:
//! - [`router`]`(state)` — the axum `Router` (call in-process, or serve it);
//! - [`AppState::new`]`(store, config)` — the state it runs on; `state.bus.subscribe()` yields
//!   every dispatch event ([`events::Event`]) in order.
//!
//! Start-up (store seeding, binding, the banner) is `crate::app::server`.
pub(crate) mod accounts;
pub(crate) mod clock;
pub(crate) mod control;
pub(crate) mod error;
pub(crate) mod eventlog;
pub(crate) mod events;
pub(crate) mod extra;
pub(crate) mod extract;
pub(crate) mod gateway;
pub(crate) mod model;
pub(crate) mod params;
pub(crate) mod permissions;
pub(crate) mod poll;
pub(crate) mod ratelimit;
pub(crate) mod render;
pub(crate) mod routes;
pub(crate) mod services;
pub(crate) mod settings_proto;
pub(crate) mod snowflake;
pub(crate) mod state;
pub(crate) mod store;
pub(crate) mod user_state;
pub(crate) mod voice;
pub(crate) mod world;

pub(crate) use routes::router;

/// Entry points for `benches/user_gateway.rs` only; not an API.
#[doc(hidden)]
pub mod user_gateway_bench {
    pub use super::gateway::bench_support::{BenchError, ListWorld, ReadyWorld};
}
pub(crate) use state::{AppState, Config};
