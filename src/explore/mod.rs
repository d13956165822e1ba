//! Exploring recordings: the route catalog (`routes`) and reports. Reads, never writes.
pub(crate) mod catalog;
pub(crate) mod report;
