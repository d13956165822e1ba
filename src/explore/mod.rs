//! Exploring recordings: the route catalog (`routes`) and reports. Reads, never writes.
pub mod catalog;
pub mod report;
