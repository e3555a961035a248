//! Leak reports (`POST /api/v1/leaked-tokens`): every real, live token reported is
//! revoked, at the same cost whatever was reported, and a restart loses none of it.
//!
//! A report is taken in two steps. Before the 202, [`accept_leak_report`] checks each
//! token (one bcrypt check each, against a dummy hash when its prefix is unknown) and
//! writes one `leak_reports` row holding the ids of the tokens found real, never a
//! secret: one row whatever the report held, so the answer's timing says nothing. After
//! the 202, [`act_on_leak_report`] revokes them and deletes the row. A row whose
//! revocations did not happen (the server stopped) is done at the next start, or within
//! two [`RESUME_AFTER_SECS`] by any other instance sharing the database. The check runs
//! on a task of its own (`server/src/api_v1/leaked.rs`), so a caller who stops waiting
//! does not cancel it.

use serde_json::json;
use sqlx::Row;

use super::revoke_once;
use crate::{
    actor::{Actor, RequestMeta},
    audit::AuditAction,
    db::{new_id, now},
    error::AppError,
    state::AppState,
    tokens::server::{format, store},
};

pub const LEAK_REPORT_MAX: usize = 20;

/// A report row older than this is taken up by whichever instance sweeps next (they
/// sweep this often too, so within twice this): its own instance had that long to act on
/// it after the 202.
pub const RESUME_AFTER_SECS: i64 = 60;

/// How much of a report's `source` and `url` is kept (they go into the audit log).
const FIELD_MAX: usize = 500;

/// A reporter's text as kept: at most `FIELD_MAX` characters, without NUL (which
/// PostgreSQL's text refuses).
fn cut(field: Option<&str>) -> Option<String> {
    field.map(|f| f.chars().filter(|c| *c != '\0').take(FIELD_MAX).collect())
}

/// Checks every reported token and writes down which are real, before the answer.
/// Returns the report's id for [`act_on_leak_report`].
pub async fn accept_leak_report(
    state: &AppState,
    tokens: &[String],
    source: Option<&str>,
    url: Option<&str>,
    meta: &RequestMeta,
) -> Result<String, AppError> {
    let mut seen: Vec<String> = Vec::new();
    let mut found: Vec<String> = Vec::new();
    for presented in tokens.iter().take(LEAK_REPORT_MAX) {
        let Some(parsed) = format::parse(presented.trim()) else { continue };
        if seen.iter().any(|p| p == parsed.prefix()) {
            continue;
        }
        seen.push(parsed.prefix().to_string());
        let row = store::find_for_auth(&state.db, parsed.prefix(), "").await?;
        let hash = row.as_ref().map_or_else(|| state.dummy_hash.to_string(), |r| r.secret_hash.clone());
        let matches = state.guard.verify_leak(parsed.secret().to_owned(), hash).await;
        if let Some(row) = row.filter(|_| matches) {
            found.push(row.token.id.clone());
        }
    }
    let id = new_id();
    sqlx::query(
        "INSERT INTO leak_reports (id, token_ids, source, url, ip, user_agent, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(found.join(" "))
    .bind(cut(source))
    .bind(cut(url))
    .bind(meta.ip.as_deref())
    .bind(cut(meta.user_agent.as_deref()))
    .bind(now())
    .execute(&state.db)
    .await?;
    Ok(id)
}

/// Revokes the tokens a report found real (once, whichever instance gets there first),
/// then deletes the report. A report already done is nothing to do.
pub async fn act_on_leak_report(state: &AppState, id: &str) -> Result<(), AppError> {
    let Some(row) = sqlx::query("SELECT token_ids, source, url, ip, user_agent FROM leak_reports WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.db)
        .await?
    else {
        return Ok(());
    };
    let token_ids: String = row.try_get("token_ids")?;
    let (source, url): (Option<String>, Option<String>) = (row.try_get("source")?, row.try_get("url")?);
    let meta = RequestMeta { ip: row.try_get("ip")?, user_agent: row.try_get("user_agent")? };
    for token_id in token_ids.split_whitespace() {
        let tenant_id: Option<String> = sqlx::query_scalar("SELECT tenant_id FROM api_tokens WHERE id = $1")
            .bind(token_id)
            .fetch_optional(&state.db)
            .await?;
        let Some(tenant_id) = tenant_id else { continue };
        let Some(token) = store::find(&state.db, &tenant_id, token_id).await? else { continue };
        let details = json!({ "source": source, "url": url });
        revoke_once(state, &token, &Actor::Server, AuditAction::TokenLeaked, &meta, details, now()).await?;
    }
    sqlx::query("DELETE FROM leak_reports WHERE id = $1").bind(id).execute(&state.db).await?;
    Ok(())
}

/// Acts on every report received before `before` that is still waiting (one that fails
/// stays for the next sweep, and the others go on); returns how many were done.
pub async fn resume_leak_reports(state: &AppState, before: i64) -> Result<usize, AppError> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT id FROM leak_reports WHERE received_at < $1 ORDER BY received_at LIMIT 1000")
            .bind(before)
            .fetch_all(&state.db)
            .await?;
    let mut done = 0;
    for id in &ids {
        match act_on_leak_report(state, id).await {
            Ok(()) => done += 1,
            Err(e) => tracing::warn!(error = %e, report = %id, "could not act on a leak report; will retry"),
        }
    }
    Ok(done)
}

/// At start, acts on every report a stopped server left waiting; then, every
/// [`RESUME_AFTER_SECS`], on those older than that (another instance stopped after its 202).
pub fn spawn_leak_resumer(state: AppState) {
    tokio::spawn(async move {
        let mut first = true;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(RESUME_AFTER_SECS as u64));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let before = if std::mem::take(&mut first) { i64::MAX } else { now() - RESUME_AFTER_SECS };
            match resume_leak_reports(&state, before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(reports = n, "revoked the tokens of leak reports left waiting"),
                Err(e) => tracing::warn!(error = %e, "could not list waiting leak reports; will retry"),
            }
        }
    });
}
