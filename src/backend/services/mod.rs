//! The backend's shared operations: what a route, a fixture (`world`) or the backend gateway
//! calls to change the world (post a message, create a guild, answer an interaction…). Services
//! sit above `state`/`events`/`render`/`store` and below `routes`; they never import a route.
pub mod channels;
pub mod commands;
pub mod common;
pub mod events;
pub mod guilds;
pub mod interactions;
pub mod members;
pub mod messages;
pub mod patch;
pub mod polls;
pub mod publish;
pub mod webhooks;
