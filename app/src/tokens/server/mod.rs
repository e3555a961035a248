//! Server side of tokens: the string format, SQL, the lifecycle rules, and the
//! authentication every `/api/v1` request goes through.

pub mod auth;
pub mod format;
pub mod guard;
pub mod lookup;
pub mod service;
pub mod store;
pub mod usage;
