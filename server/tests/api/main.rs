//! Integration tests: the real server on port 0, on SQLite and on PostgreSQL.

mod helpers;

mod actions;
mod authority;
mod backups;
mod cli;
mod copies;
mod crash;
mod delivery;
mod health;
mod housekeeping;
mod imports;
mod insights;
mod limits;
mod matrix;
mod metrics;
mod oidc;
mod openapi;
mod people;
mod process;
mod projects;
mod run_pages;
mod scale_out;
mod secrets;
mod testing;
mod tokens;
mod upgrades;
mod uploads;
