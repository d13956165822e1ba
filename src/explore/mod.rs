//! Exploring recordings: route templates and the route catalog (`routes`). Reads, never writes.
pub mod catalog;
pub mod report;
mod template;

pub use template::{matches_spec_path, route_template, strip_api_prefix};
