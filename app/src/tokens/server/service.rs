//! Reading tokens: the list (every filter in SQL), one token, its usage, addresses and
//! detail view, and what a suspension would stop. Changes live in `lifecycle`.

use super::{store, store::TokenRow, usage::day_of};
use crate::{
    actor::Actor,
    db::{now, timestamp},
    error::AppError,
    policy::{self, Action, Projects, Reach, TokenFacts},
    state::AppState,
    tokens::{
        least_privilege, TokenAddress, TokenDetail, TokenOwner, TokenStatus, TokenSummary, TokenUsage, UsageCounts,
        UsageDay, RECENT_ADDRESSES, USAGE_DAYS,
    },
};

pub const MAX_PAGE: i64 = 200;

/// What a summary adds to the row: the last 30 days' use and a rotation under way.
#[derive(Default)]
pub(super) struct Extras {
    used: UsageCounts,
    replaced_by: Option<String>,
}

pub(super) fn summary(row: &TokenRow, projects: Option<Vec<String>>, now: i64, extras: Extras) -> TokenSummary {
    let status = row.status_at(now);
    let live = matches!(status, TokenStatus::Active | TokenStatus::Disabled);
    let created_at = timestamp(row.created_at);
    // Rotations from before the 7-day ceiling have no `retire_at` and retire on first use.
    let retire_on_first_use = row.retire_on_first_use || (row.retire_at.is_none() && extras.replaced_by.is_some());
    TokenSummary {
        id: row.id.clone(),
        name: row.name.clone(),
        prefix: row.prefix.to_string(),
        scopes: row.scopes.clone(),
        projects,
        created_at,
        created_by: row.created_by_email.clone(),
        expires_at: row.expires_at.map(timestamp),
        last_used_at: row.last_used_at.map(timestamp),
        last_used_ip: row.last_used_ip.clone(),
        status,
        rate_limit_per_minute: row.rate_limit.and_then(|n| u32::try_from(n).ok()),
        owner: row.owner,
        // Minted tokens live minutes: never a hint.
        suggested_scope: (live && row.minted_for.is_none())
            .then(|| least_privilege(&row.scopes, created_at, timestamp(now), extras.used))
            .flatten(),
        replaced_by: extras.replaced_by.filter(|_| live),
        retire_at: row.retire_at.map(timestamp),
        retire_on_first_use,
        ip_allowlist: row.ip_allowlist.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        beyond_max_lifetime: false,
        minted_for: row.minted_for.clone(),
    }
}

/// The first day of the usage window that ends today.
fn window_start(now: i64) -> i64 {
    day_of(now) - (USAGE_DAYS - 1)
}

pub(super) fn tenant_of(actor: &Actor) -> Result<&str, AppError> {
    actor.tenant_id().ok_or_else(|| AppError::forbidden("This needs a workspace."))
}

/// Summaries for rows, with project keys fetched in one query.
async fn summaries(state: &AppState, rows: &[TokenRow]) -> Result<Vec<TokenSummary>, AppError> {
    let restricted: Vec<&str> = rows.iter().filter(|r| !r.all_projects).map(|r| r.id.as_str()).collect();
    let keys = store::project_keys(&state.db, &restricted).await?;
    let now = now();
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    // Written counts, plus what this instance counted since its last batch — read while
    // no batch is half-way between the two.
    let from_day = window_start(now);
    let steady = state.usage.steady().await;
    let used = store::usage_totals(&state.db, &ids, from_day).await?;
    let replacements = store::replacements(&state.db, &ids).await?;
    let cap = match rows.first() {
        Some(row) => crate::tenants::server::max_token_lifetime(&state.db, &row.tenant_id).await?,
        None => None,
    };
    let pending: Vec<UsageCounts> = rows.iter().map(|row| state.usage.pending(&row.id, from_day)).collect();
    drop(steady);
    Ok(rows
        .iter()
        .zip(pending)
        .map(|(row, pending)| {
            let projects = (!row.all_projects)
                .then(|| keys.iter().filter(|(t, _, _)| *t == row.id).map(|(_, _, k)| k.clone()).collect());
            let mut extras = Extras {
                used: pending,
                replaced_by: replacements.iter().rfind(|(old, _, _)| *old == row.id).map(|(_, new, _)| new.clone()),
            };
            if let Some((_, written)) = used.iter().find(|(id, _)| *id == row.id) {
                extras.used.add(*written);
            }
            let mut summary = summary(row, projects, now, extras);
            summary.beyond_max_lifetime = cap.is_some_and(|days| {
                summary.status == TokenStatus::Active
                    && policy::MaxLifetime { days }.exceeded_by(row.created_at, row.expires_at)
            });
            summary
        })
        .collect())
}

#[derive(Clone, Debug, Default)]
pub struct ListQuery {
    pub search: Option<String>,
    pub status: Option<TokenStatus>,
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

fn parse_cursor(cursor: &str) -> Result<(i64, String), AppError> {
    cursor
        .split_once('.')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.to_string())))
        .ok_or_else(|| AppError::invalid("The cursor is not one this server gave out."))
}

/// A page of the tenant's tokens, newest first. Everyone in the tenant may list; a
/// project credential sees only tokens confined to its projects. Every filter runs in
/// SQL before the limit, and the cursor follows the last token shown.
pub async fn list(state: &AppState, actor: &Actor, query: ListQuery) -> Result<Page<TokenSummary>, AppError> {
    actor.permit(Action::ManageTokens)?;
    let tenant_id = tenant_of(actor)?;
    let limit = query.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(AppError::invalid(format!("limit must be between 1 and {MAX_PAGE}.")));
    }
    let before = query.cursor.as_deref().map(parse_cursor).transpose()?;
    let search = query.search.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let filter = store::ListFilter {
        tenant_id,
        before,
        search,
        status: query.status,
        within: actor.project_ids(),
        now: now(),
        limit,
    };
    let rows = store::list(&state.db, &filter).await?;
    let next_cursor = match rows.last() {
        Some(last) if rows.len() as i64 == limit => Some(format!("{}.{}", last.created_at, last.id)),
        _ => None,
    };
    Ok(Page { data: summaries(state, &rows).await?, next_cursor })
}

/// A restricted token's project ids and keys (`None`: all projects).
pub type TokenProjects = Option<(Vec<String>, Vec<String>)>;

pub(super) async fn projects_of(state: &AppState, row: &TokenRow) -> Result<TokenProjects, AppError> {
    if row.all_projects {
        return Ok(None);
    }
    let rows = store::project_keys(&state.db, &[row.id.as_str()]).await?;
    Ok(Some(rows.into_iter().map(|(_, id, key)| (id, key)).unzip()))
}

/// A token's row and project ids as the rules see them.
pub(super) fn facts(row: &TokenRow, project_ids: Option<&[String]>) -> TokenFacts {
    TokenFacts {
        id: row.id.clone(),
        reach: Reach::of_token(
            &row.scopes,
            project_ids.map_or(Projects::All, |ids| Projects::only(ids.iter().cloned())),
            row.expires_at,
            None,
            row.owner,
            crate::addresses::parse_allowlist(&row.ip_allowlist).unwrap_or_default(),
        ),
        rate_limit: row.rate_limit.and_then(|n| u32::try_from(n).ok()),
    }
}

/// A token the actor may see (404 otherwise, like a missing one), with its projects:
/// what every change needs, read once.
pub(super) async fn load_with_projects(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<(TokenRow, TokenProjects), AppError> {
    let tenant_id = tenant_of(actor)?;
    let row = store::find(&state.db, tenant_id, id).await?.ok_or_else(|| AppError::not_found("Token"))?;
    let projects = projects_of(state, &row).await?;
    let ids = projects.as_ref().map(|(ids, _)| ids.as_slice());
    if !policy::see_token(&actor.permit(Action::ManageTokens)?, &facts(&row, ids).reach) {
        return Err(AppError::not_found("Token"));
    }
    Ok((row, projects))
}

/// A token the actor may see; its projects are read only when the actor is restricted.
async fn load(state: &AppState, actor: &Actor, id: &str) -> Result<TokenRow, AppError> {
    actor.permit(Action::ManageTokens)?;
    if actor.project_ids().is_some() {
        return Ok(load_with_projects(state, actor, id).await?.0);
    }
    let tenant_id = tenant_of(actor)?;
    store::find(&state.db, tenant_id, id).await?.ok_or_else(|| AppError::not_found("Token"))
}

pub async fn get(state: &AppState, actor: &Actor, id: &str) -> Result<TokenSummary, AppError> {
    let row = load(state, actor, id).await?;
    Ok(summaries(state, std::slice::from_ref(&row)).await?.remove(0))
}

/// The last 30 days of a token's use, every day present, oldest first. Counts this
/// instance has not written yet are written first, so the answer includes them.
pub async fn usage(state: &AppState, actor: &Actor, id: &str) -> Result<TokenUsage, AppError> {
    usage_of(state, load(state, actor, id).await?).await
}

async fn usage_of(state: &AppState, row: TokenRow) -> Result<TokenUsage, AppError> {
    let now = now();
    // Bounded: a reader never waits long on a batch being written; at worst it misses
    // the counts of the last few seconds. The write runs as its own task, so giving up
    // on waiting never drops a batch half-written.
    let (usage, db) = (state.usage.clone(), state.db.clone());
    let write = tokio::spawn(async move { usage.flush(&db, now).await });
    match tokio::time::timeout(std::time::Duration::from_secs(3), write).await {
        Ok(Ok(Ok(_))) => {}
        Ok(Ok(Err(e))) => tracing::warn!(error = %e, "could not write token usage before reading it"),
        Ok(Err(e)) => tracing::warn!(error = %e, "the usage write task failed"),
        Err(_) => tracing::warn!("token usage is still being written; reading what is there"),
    }
    let from_day = window_start(now);
    let written = store::usage_days(&state.db, &row.id, from_day).await?;
    let mut total = UsageCounts::default();
    let days = (from_day..=day_of(now))
        .map(|day| {
            let counts = written.iter().find(|(d, _)| *d == day).map(|(_, c)| *c).unwrap_or_default();
            total.add(counts);
            UsageDay { date: timestamp(day * 86_400).date().to_string(), counts }
        })
        .collect();
    let live = matches!(row.status_at(now), TokenStatus::Active | TokenStatus::Disabled);
    let suggested_scope =
        live.then(|| least_privilege(&row.scopes, timestamp(row.created_at), timestamp(now), total)).flatten();
    Ok(TokenUsage { token_id: row.id, days, total, suggested_scope })
}

/// The last addresses a token was used from, most recent first.
pub async fn addresses(state: &AppState, actor: &Actor, id: &str) -> Result<Vec<TokenAddress>, AppError> {
    let row = load(state, actor, id).await?;
    store::recent_addresses(&state.db, &row.id, RECENT_ADDRESSES).await
}

/// Everything the token's detail view shows, from one read of the token's row.
pub async fn detail(state: &AppState, actor: &Actor, id: &str) -> Result<TokenDetail, AppError> {
    let row = load(state, actor, id).await?;
    // Usage first: it writes this instance's pending counts, which the summary's hint reads.
    let usage = usage_of(state, row.clone()).await?;
    let token = summaries(state, std::slice::from_ref(&row)).await?.remove(0);
    let addresses = store::recent_addresses(&state.db, &row.id, RECENT_ADDRESSES).await?;
    let replaced_by_masked = match &token.replaced_by {
        Some(new_id) => store::find(&state.db, tenant_of(actor)?, new_id).await?.map(|t| t.prefix.masked()),
        None => None,
    };
    Ok(TokenDetail { token, usage, addresses, replaced_by_masked, now: timestamp(now()) })
}

/// What suspending a person does to their tokens that work now: `(workspace name,
/// token)` for the ones that stop (their own), and how many keep working (the
/// workspace's, which they created). All workspaces, or one.
pub async fn stopping_with(
    state: &AppState,
    user_id: &str,
    tenant_id: Option<&str>,
) -> Result<(Vec<(String, TokenSummary)>, usize), AppError> {
    let rows = store::live_tokens_created_by(&state.db, user_id, tenant_id, now()).await?;
    let (own, workspace): (Vec<_>, Vec<_>) = rows.into_iter().partition(|(_, row)| row.owner == TokenOwner::User);
    let (names, rows): (Vec<String>, Vec<TokenRow>) = own.into_iter().unzip();
    Ok((names.into_iter().zip(summaries(state, &rows).await?).collect(), workspace.len()))
}
