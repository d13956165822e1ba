//! discord-mitm: record, replay and reimplement Discord.
pub mod backend;
pub mod ca;
pub mod cli;
pub mod gateway;
