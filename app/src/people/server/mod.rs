//! Server side of people: SQL, password hashing, sessions and the rules that join them.

pub mod password;
pub mod service;
pub mod session;
pub mod store;
