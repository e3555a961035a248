//! Server side of test management: SQL, the rules, and the report importers.

pub mod import;
pub mod service;
pub mod store;
