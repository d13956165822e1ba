//! Exploring recordings: the route catalog (`routes`), inferred schemas (OpenAPI, AsyncAPI),
//! diffs, search and reports. Reads, never writes.
pub(crate) mod catalog;
pub mod openapi;
pub(crate) mod report;
pub mod schema;
pub mod web;
