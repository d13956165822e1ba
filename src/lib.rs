//! discord-mitm: record, replay and reimplement Discord.
pub(crate) mod app;
#[doc(hidden)]
pub mod backend;
pub mod ca;
pub mod cli;
pub mod explore;
pub mod gateway;
pub mod gwproxy;
pub mod listen;
pub mod pipeline;
pub(crate) mod proxy;
pub mod store;
pub(crate) mod upstream;
