//! Server side of tokens: the string format, SQL, reading (`service`), every change
//! (`lifecycle`, asking `crate::policy`), and the authentication every `/api/v1` request
//! goes through.

pub mod auth;
pub mod format;
pub mod guard;
pub mod lifecycle;
pub mod lookup;
pub mod service;
pub mod store;
pub mod usage;
