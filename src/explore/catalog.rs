//! The route catalog.
