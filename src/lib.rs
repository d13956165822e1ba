//! discord-mitm: record, replay and reimplement Discord.
pub mod app;
pub mod backend;
pub mod ca;
pub mod cli;
pub mod explore;
pub mod gateway;
pub mod gwproxy;
pub mod pipeline;
pub mod proxy;
pub mod store;
pub mod upstream;
