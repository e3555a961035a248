//! What keeps the tables that grow with traffic bounded, in one place. Each has its
//! retention (README, "Retention"):
//!
//! - `audit_log`: `QAHUB_AUDIT_RETENTION_DAYS` (unset: kept for ever, and said so at start);
//! - `import_keys`: 24 hours (`IMPORT_KEY_TTL_SECS`; also dropped per workspace on its next import);
//! - `oidc_jtis`: until the ID token expires, plus five minutes of clock skew (also on each exchange);
//! - `api_token_usage`: `USAGE_DAYS` days, at each flush of the counts (`tokens/server/usage.rs`);
//! - sessions: until they expire, by tower-sessions' own cleanup (`server/src/sessions.rs`);
//! - `leak_reports`: until its revocations are done (`tokens/server/lifecycle/leaks.rs`).
//!
//! Runs at start and then hourly; deletes at most [`CHUNK`] rows a statement, so a first
//! pass over years of audit log never holds SQLite's write lock for long.

use crate::{db::now, error::AppError, state::AppState, testing::server::store::IMPORT_KEY_TTL_SECS};

/// Rows one statement deletes at most.
pub const CHUNK: i64 = 5_000;

/// How many rows one pass deleted, by table.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub audit_log: u64,
    pub import_keys: u64,
    pub oidc_jtis: u64,
}

/// One pass over every table with a retention, as of `now`.
pub async fn sweep(state: &AppState, now: i64) -> Result<Swept, AppError> {
    let mut swept = Swept::default();
    if let Some(days) = state.settings.audit_retention_days {
        let before = now - i64::from(days) * 86_400;
        loop {
            let done = sqlx::query(
                "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE created_at < $1 LIMIT $2)",
            )
            .bind(before)
            .bind(CHUNK)
            .execute(&state.db)
            .await?;
            swept.audit_log += done.rows_affected();
            if done.rows_affected() < CHUNK as u64 {
                break;
            }
        }
    }
    swept.import_keys = sqlx::query("DELETE FROM import_keys WHERE created_at < $1")
        .bind(now - IMPORT_KEY_TTL_SECS)
        .execute(&state.db)
        .await?
        .rows_affected();
    swept.oidc_jtis = sqlx::query("DELETE FROM oidc_jtis WHERE expires_at < $1")
        .bind(now - 300)
        .execute(&state.db)
        .await?
        .rows_affected();
    Ok(swept)
}

/// Sweeps at start, then every hour, for as long as the process runs.
pub fn spawn(state: AppState) {
    match state.settings.audit_retention_days {
        Some(days) => tracing::info!(days, "audit log entries are deleted after QAHUB_AUDIT_RETENTION_DAYS"),
        None => tracing::info!("the audit log is kept for ever (set QAHUB_AUDIT_RETENTION_DAYS to bound it)"),
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sweep(&state, now()).await {
                Ok(swept) if swept != Swept::default() => tracing::info!(?swept, "housekeeping deleted expired rows"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "housekeeping failed; will retry in an hour"),
            }
        }
    });
}
