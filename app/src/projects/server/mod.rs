//! Server side of projects: SQL and the rules on who may do what.

pub mod service;
pub mod store;
