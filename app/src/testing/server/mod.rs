//! Server side of test management: SQL and the rules. The report readers are the
//! `reports` crate, shared with the `qa-hub` client.

pub mod postgres_batches;
pub mod service;
pub mod sqlite_batches;
pub mod store;
