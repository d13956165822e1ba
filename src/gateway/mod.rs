//! Sans-I/O Discord gateway: payloads, codecs, compression, close codes and session state machines.
//! No sockets, no tasks, no clocks: callers pass time in and do the I/O.
pub mod backoff;
pub mod capabilities;
pub mod client;
pub mod close;
pub mod codec;
pub mod compress;
pub mod decoder;
mod deflate;
pub mod etf;
pub mod events;
pub mod handshake;
pub mod intents;
pub mod observe;
pub mod payload;
pub mod ratelimit;
pub mod server;
#[cfg(test)]
mod table_tests;
pub mod wire;

pub use payload::{GatewayPayload, OpCode};
