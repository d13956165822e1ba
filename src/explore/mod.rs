//! Exploring recordings: the route catalog (`routes`), inferred schemas (OpenAPI, AsyncAPI),
//! diffs, search and reports. Reads, never writes.
pub mod asyncapi;
pub(crate) mod catalog;
pub mod diff;
pub mod gateway;
pub mod openapi;
pub mod range;
pub(crate) mod report;
pub mod schema;
pub mod search;
pub mod web;
