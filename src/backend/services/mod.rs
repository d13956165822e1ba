//! The backend's shared operations: what a route, a fixture (`world`) or the backend gateway
//! calls to change the world (post a message, create a guild, answer an interaction…). Services
//! sit above `state`/`events`/`render`/`store` and below `routes`; they never import a route.
pub(crate) mod auth;
pub(crate) mod channels;
pub(crate) mod commands;
pub(crate) mod common;
pub(crate) mod control;
pub(crate) mod events;
pub(crate) mod expressions;
pub(crate) mod group_dms;
pub(crate) mod guilds;
pub(crate) mod images;
pub(crate) mod interactions;
pub(crate) mod members;
pub(crate) mod messages;
pub(crate) mod patch;
pub(crate) mod polls;
pub(crate) mod publish;
pub(crate) mod read_states;
pub(crate) mod relationships;
pub(crate) mod settings;
pub(crate) mod webauthn;
pub(crate) mod webhooks;
