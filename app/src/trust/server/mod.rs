//! Server side of Trusted CI: policies (rules, SQL), the issuers' keys and the exchange.

pub mod exchange;
pub mod issuers;
pub mod service;
pub mod store;
