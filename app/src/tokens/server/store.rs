//! SQL for API tokens. No policy here: `service` and `auth` decide.

use sqlx::{any::AnyRow, Any, Row, Transaction};

use crate::{
    db::{on_unique, Db},
    error::AppError,
    tokens::{ExpiryChoice, Prefix, Scope, TokenAddress, TokenOwner, TokenState, TokenStatus, UsageCounts},
};

/// A token row with what the list and the rules need.
#[derive(Clone, Debug)]
pub struct TokenRow {
    pub id: String,
    pub tenant_id: String,
    pub prefix: Prefix,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub all_projects: bool,
    pub created_by: Option<String>,
    pub created_by_email: Option<String>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub expiry_policy: ExpiryChoice,
    pub status: TokenState,
    pub last_used_at: Option<i64>,
    pub last_used_ip: Option<String>,
    pub replaces_id: Option<String>,
    pub retire_at: Option<i64>,
    pub rate_limit: Option<i64>,
    pub owner: TokenOwner,
    /// A rotation retires this token when its replacement is first used.
    pub retire_on_first_use: bool,
    /// Its own IP allowlist, comma-separated CIDRs; empty: any address.
    pub ip_allowlist: String,
    /// For a token a trust policy minted: the job it was minted for.
    pub minted_for: Option<String>,
}

impl TokenRow {
    /// What the token is at `now`.
    pub fn status_at(&self, now: i64) -> TokenStatus {
        self.status.status_at(self.expires_at, self.retire_at, now)
    }
}

pub fn scopes_to_text(scopes: &[Scope]) -> String {
    scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

pub fn scopes_from_text(text: &str) -> Vec<Scope> {
    text.split(',').filter_map(Scope::parse).collect()
}

/// The columns `token_row` reads, each named by its alias (lower-case: PostgreSQL folds
/// unquoted names). Queries that join more tables alias those columns apart from these.
const TOKEN_COLUMNS: &str = "t.id AS id, t.tenant_id AS tenant_id, t.prefix AS prefix, t.name AS name, \
     t.scopes AS scopes, t.all_projects AS all_projects, t.created_by AS created_by, u.email AS created_by_email, \
     t.created_at AS created_at, t.expires_at AS expires_at, t.expiry_policy AS expiry_policy, t.status AS status, \
     t.last_used_at AS last_used_at, t.last_used_ip AS last_used_ip, t.replaces_id AS replaces_id, \
     t.retire_at AS retire_at, t.rate_limit AS rate_limit, t.owner AS owner, \
     t.retire_on_first_use AS retire_on_first_use, t.ip_allowlist AS ip_allowlist, t.minted_for AS minted_for";

/// What a token row is at `$now`, in SQL: the same order as `TokenState::status_at`.
fn status_sql(now: &str) -> String {
    format!(
        "CASE WHEN t.status = 'revoked' OR (t.retire_at IS NOT NULL AND t.retire_at <= {now}) THEN 'revoked' \
         WHEN t.expires_at IS NOT NULL AND t.expires_at <= {now} THEN 'expired' \
         WHEN t.status = 'disabled' THEN 'disabled' ELSE 'active' END"
    )
}

/// Column access by name shared by sqlx's rows and rusqlite's (the in-process SQLite
/// reader in `lookup`), so each row shape is mapped once.
pub trait Columns {
    fn named<T>(&self, name: &str) -> Result<T, sqlx::Error>
    where
        T: Column;
}

/// A value every reader can decode.
pub trait Column:
    for<'r> sqlx::Decode<'r, Any>
    + sqlx::Type<Any>
    + for<'r> sqlx::Decode<'r, sqlx::Postgres>
    + sqlx::Type<sqlx::Postgres>
    + rusqlite::types::FromSql
{
}

impl<T> Column for T where
    T: for<'r> sqlx::Decode<'r, Any>
        + sqlx::Type<Any>
        + for<'r> sqlx::Decode<'r, sqlx::Postgres>
        + sqlx::Type<sqlx::Postgres>
        + rusqlite::types::FromSql
{
}

impl Columns for AnyRow {
    fn named<T>(&self, name: &str) -> Result<T, sqlx::Error>
    where
        T: Column,
    {
        self.try_get(name)
    }
}

impl Columns for sqlx::postgres::PgRow {
    fn named<T>(&self, name: &str) -> Result<T, sqlx::Error>
    where
        T: Column,
    {
        self.try_get(name)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn named<T>(&self, name: &str) -> Result<T, sqlx::Error>
    where
        T: Column,
    {
        self.get(name).map_err(|e| sqlx::Error::Decode(Box::new(e)))
    }
}

fn token_row<R: Columns>(row: &R) -> Result<TokenRow, sqlx::Error> {
    Ok(TokenRow {
        id: row.named("id")?,
        tenant_id: row.named("tenant_id")?,
        prefix: Prefix::from_stored(row.named("prefix")?),
        name: row.named("name")?,
        scopes: scopes_from_text(&row.named::<String>("scopes")?),
        all_projects: row.named::<i64>("all_projects")? != 0,
        created_by: row.named("created_by")?,
        created_by_email: row.named("created_by_email")?,
        created_at: row.named("created_at")?,
        expires_at: row.named("expires_at")?,
        // Only the four choices are ever written; anything else reads as what it does.
        expiry_policy: ExpiryChoice::parse(&row.named::<String>("expiry_policy")?).unwrap_or(
            if row.named::<Option<i64>>("expires_at")?.is_some() { ExpiryChoice::Custom } else { ExpiryChoice::Never },
        ),
        status: TokenState::parse(&row.named::<String>("status")?).unwrap_or(TokenState::Revoked),
        last_used_at: row.named("last_used_at")?,
        last_used_ip: row.named("last_used_ip")?,
        replaces_id: row.named("replaces_id")?,
        retire_at: row.named("retire_at")?,
        rate_limit: row.named("rate_limit")?,
        owner: TokenOwner::parse(&row.named::<String>("owner")?).unwrap_or_default(),
        retire_on_first_use: row.named::<i64>("retire_on_first_use")? != 0,
        ip_allowlist: row.named("ip_allowlist")?,
        minted_for: row.named("minted_for")?,
    })
}

pub struct NewToken<'a> {
    pub id: &'a str,
    pub tenant_id: &'a str,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub name: &'a str,
    pub scopes: &'a [Scope],
    pub project_ids: Option<&'a [String]>,
    pub created_by: Option<&'a str>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub expiry_policy: ExpiryChoice,
    pub replaces_id: Option<&'a str>,
    pub owner: TokenOwner,
    pub ip_allowlist: &'a str,
}

/// Inserts a token and its projects. `Ok(false)` when the prefix is taken (retry with another).
pub async fn insert(tx: &mut Transaction<'_, Any>, t: &NewToken<'_>) -> Result<bool, AppError> {
    let inserted = sqlx::query(
        "INSERT INTO api_tokens (id, tenant_id, prefix, secret_hash, name, scopes, all_projects, created_by, \
         created_at, expires_at, expiry_policy, status, replaces_id, owner, ip_allowlist) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', $12, $13, $14)",
    )
    .bind(t.id)
    .bind(t.tenant_id)
    .bind(t.prefix)
    .bind(t.secret_hash)
    .bind(t.name)
    .bind(scopes_to_text(t.scopes))
    .bind(i64::from(t.project_ids.is_none()))
    .bind(t.created_by)
    .bind(t.created_at)
    .bind(t.expires_at)
    .bind(t.expiry_policy.as_str())
    .bind(t.replaces_id)
    .bind(t.owner.as_str())
    .bind(t.ip_allowlist)
    .execute(&mut **tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) => {
            let taken = matches!(&e, sqlx::Error::Database(d) if d.is_unique_violation());
            if taken {
                return Ok(false);
            }
            return Err(e.into());
        }
    }
    if let Some(ids) = t.project_ids {
        set_projects(tx, t.id, ids).await?;
    }
    Ok(true)
}

pub async fn set_projects(
    tx: &mut Transaction<'_, Any>,
    token_id: &str,
    project_ids: &[String],
) -> Result<(), AppError> {
    sqlx::query("DELETE FROM api_token_projects WHERE token_id = $1").bind(token_id).execute(&mut **tx).await?;
    for project_id in project_ids {
        sqlx::query("INSERT INTO api_token_projects (token_id, project_id) VALUES ($1, $2)")
            .bind(token_id)
            .bind(project_id)
            .execute(&mut **tx)
            .await
            .map_err(|e| on_unique(e, || AppError::invalid("A project is listed twice.")))?;
    }
    Ok(())
}

/// One token of a tenant, read through the pool or inside a transaction.
pub async fn find<'e, E>(executor: E, tenant_id: &str, id: &str) -> Result<Option<TokenRow>, AppError>
where
    E: sqlx::Executor<'e, Database = Any>,
{
    let row = sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by \
         WHERE t.tenant_id = $1 AND t.id = $2"
    ))
    .bind(tenant_id)
    .bind(id)
    .fetch_optional(executor)
    .await?;
    Ok(row.as_ref().map(token_row).transpose()?)
}

/// What a page of the token list asks for. Every filter is applied in SQL, before the
/// limit, so a page is full whenever more matching tokens exist.
pub struct ListFilter<'a> {
    pub tenant_id: &'a str,
    /// The keyset cursor `(created_at, id)` of the last token of the previous page.
    pub before: Option<(i64, String)>,
    pub search: Option<&'a str>,
    pub status: Option<TokenStatus>,
    /// Only tokens confined to these projects (ids): what a project credential sees.
    pub within: Option<&'a [String]>,
    pub now: i64,
    pub limit: i64,
}

/// A page of a tenant's tokens, newest first.
pub async fn list(db: &Db, f: &ListFilter<'_>) -> Result<Vec<TokenRow>, AppError> {
    let (before_at, before_id) = f.before.clone().unwrap_or((i64::MAX, String::new()));
    let pattern =
        f.search.map(|s| format!("%{}%", s.to_lowercase().replace(['%', '_'], ""))).unwrap_or_else(|| "%".into());
    let within = match f.within {
        None => String::new(),
        Some([]) => " AND t.all_projects = 0 AND NOT EXISTS (SELECT 1 FROM api_token_projects tp \
             WHERE tp.token_id = t.id)"
            .to_string(),
        Some(ids) => format!(
            " AND t.all_projects = 0 AND NOT EXISTS (SELECT 1 FROM api_token_projects tp \
             WHERE tp.token_id = t.id AND tp.project_id NOT IN ({}))",
            placeholders(8, ids.len())
        ),
    };
    let sql = format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by \
         WHERE t.tenant_id = $1 AND (t.created_at < $2 OR (t.created_at = $2 AND ($3 = '' OR t.id < $3))) \
         AND (LOWER(t.name) LIKE $4 OR t.prefix LIKE $4) AND ($6 = '' OR {} = $6){within} \
         ORDER BY t.created_at DESC, t.id DESC LIMIT $5",
        status_sql("$7")
    );
    let mut query = sqlx::query(&sql)
        .bind(f.tenant_id)
        .bind(before_at)
        .bind(before_id)
        .bind(pattern)
        .bind(f.limit)
        .bind(f.status.map_or("", TokenStatus::as_str))
        .bind(f.now);
    for id in f.within.unwrap_or_default() {
        query = query.bind(id);
    }
    let rows = query.fetch_all(db).await?;
    Ok(rows.iter().map(token_row).collect::<Result<_, _>>()?)
}

/// `$first, $first+1, …` for `n` bound values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// One project a restricted token may use.
#[derive(sqlx::FromRow)]
struct TokenProject {
    token_id: String,
    project_id: String,
    project_key: String,
}

/// Project keys of restricted tokens, for a set of token ids: `(token id, project id, key)`.
pub async fn project_keys(db: &Db, token_ids: &[&str]) -> Result<Vec<(String, String, String)>, AppError> {
    if token_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT tp.token_id AS token_id, p.id AS project_id, p.key AS project_key \
         FROM api_token_projects tp JOIN projects p ON p.id = tp.project_id \
         WHERE tp.token_id IN ({}) ORDER BY p.key",
        placeholders(1, token_ids.len())
    );
    let mut query = sqlx::query_as::<_, TokenProject>(&sql);
    for id in token_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(db).await?.into_iter().map(|r| (r.token_id, r.project_id, r.project_key)).collect())
}

/// Changes the status only from the expected one; returns whether it changed.
pub async fn transition(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    from: &[TokenState],
    to: TokenState,
    now: i64,
) -> Result<bool, AppError> {
    let from_list = from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ");
    let revoked_at = (to == TokenState::Revoked).then_some(now);
    let done = sqlx::query(&format!(
        "UPDATE api_tokens SET status = $1, revoked_at = COALESCE($2, revoked_at) WHERE id = $3 AND status IN ({from_list})"
    ))
    .bind(to.as_str())
    .bind(revoked_at)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub struct Changes<'a> {
    pub rate_limit: Option<i64>,
    pub name: &'a str,
    pub scopes: &'a [Scope],
    pub all_projects: bool,
    pub expires_at: Option<i64>,
    pub expiry_policy: ExpiryChoice,
    pub ip_allowlist: &'a str,
}

/// Marks a fresh token as minted by a trust policy for a CI job.
pub async fn set_minted(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    policy_id: &str,
    minted_for: &str,
) -> Result<(), AppError> {
    sqlx::query("UPDATE api_tokens SET minted_for = $1, policy_id = $2 WHERE id = $3")
        .bind(minted_for)
        .bind(policy_id)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn update(tx: &mut Transaction<'_, Any>, id: &str, c: &Changes<'_>) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE api_tokens SET name = $1, scopes = $2, all_projects = $3, expires_at = $4, expiry_policy = $5, \
         rate_limit = $6, ip_allowlist = $8 WHERE id = $7",
    )
    .bind(c.name)
    .bind(scopes_to_text(c.scopes))
    .bind(i64::from(c.all_projects))
    .bind(c.expires_at)
    .bind(c.expiry_policy.as_str())
    .bind(c.rate_limit)
    .bind(id)
    .bind(c.ip_allowlist)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Sets when a rotated token stops at the latest (never later than an earlier setting),
/// and whether its replacement's first use retires it sooner.
pub async fn set_retire_at(
    tx: &mut Transaction<'_, Any>,
    id: &str,
    at: i64,
    on_first_use: bool,
) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE api_tokens SET retire_at = CASE WHEN retire_at IS NULL OR retire_at > $1 THEN $1 ELSE retire_at END, \
         retire_on_first_use = $2 WHERE id = $3",
    )
    .bind(at)
    .bind(i64::from(on_first_use))
    .bind(id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// What authentication needs, in one round trip by the indexed prefix.
#[derive(Clone, Debug)]
pub struct AuthRow {
    pub token: TokenRow,
    pub secret_hash: String,
    pub tenant_name: String,
    pub tenant_status: String,
    pub ip_allowlist: String,
    pub ai_provider: Option<String>,
    pub ai_model: Option<String>,
    pub ai_quota_exhausted: bool,
    pub tenant_last_active_at: Option<i64>,
    pub owner_status: Option<String>,
    pub owner_role: Option<String>,
    /// The tenant that claims the request's host, if any.
    pub host_owner: Option<String>,
    /// Requests per minute: the token's own limit, else the tenant's default.
    pub rate_limit: Option<i64>,
}

/// One `(prefix, host)` pair authentication asks about.
pub type AuthKey = (String, String);

/// What authentication reads: the token by its indexed prefix with the tenant, the
/// owner, their membership and the host claim; `req` names the asked `(prefix, host)`.
/// Every column has an alias of its own: the tenant's and the owner's `name`, `status`
/// and `ip_allowlist` would otherwise share the token's names.
const AUTH_SELECT: &str = "SELECT {TOKEN_COLUMNS}, t.secret_hash AS secret_hash, tn.name AS tenant_name, \
     tn.status AS tenant_status, tn.ip_allowlist AS tenant_ip_allowlist, tn.ai_provider AS tenant_ai_provider, \
     tn.ai_model AS tenant_ai_model, tn.ai_quota_exhausted AS tenant_ai_quota_exhausted, \
     tn.last_active_at AS tenant_last_active_at, u.status AS owner_status, m.role AS owner_role, \
     (SELECT th.tenant_id FROM tenant_hosts th WHERE th.host = {HOST}) AS host_owner, \
     COALESCE(t.rate_limit, tn.token_rate_limit) AS effective_rate_limit, {PREFIX} AS req_prefix, {HOST} AS req_host \
     FROM {FROM} JOIN tenants tn ON tn.id = t.tenant_id \
     LEFT JOIN users u ON u.id = t.created_by \
     LEFT JOIN memberships m ON m.user_id = t.created_by AND m.tenant_id = t.tenant_id";

/// The query for `pairs` `(prefix, host)` pairs, bound in order.
pub fn auth_sql(pairs: usize) -> String {
    let values = (0..pairs).map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2)).collect::<Vec<_>>().join(", ");
    format!(
        "WITH req(prefix, host) AS (VALUES {values}) {}",
        AUTH_SELECT
            .replace("{TOKEN_COLUMNS}", TOKEN_COLUMNS)
            .replace("{HOST}", "req.host")
            .replace("{PREFIX}", "req.prefix")
            .replace("{FROM}", "req JOIN api_tokens t ON t.prefix = req.prefix")
    )
}

/// The same for one pair, in SQLite's numbered parameters (`?1` prefix, `?2` host): the
/// in-process reader's statement.
pub fn auth_sql_sqlite_one() -> String {
    format!(
        "{} WHERE t.prefix = ?1",
        AUTH_SELECT
            .replace("{TOKEN_COLUMNS}", TOKEN_COLUMNS)
            .replace("{HOST}", "?2")
            .replace("{PREFIX}", "?1")
            .replace("{FROM}", "api_tokens t")
    )
}

/// One row of `auth_sql`.
pub fn auth_row<R: Columns>(row: &R) -> Result<(AuthKey, AuthRow), sqlx::Error> {
    let key = (row.named("req_prefix")?, row.named("req_host")?);
    let auth = AuthRow {
        token: token_row(row)?,
        secret_hash: row.named("secret_hash")?,
        tenant_name: row.named("tenant_name")?,
        tenant_status: row.named("tenant_status")?,
        ip_allowlist: row.named("tenant_ip_allowlist")?,
        ai_provider: row.named("tenant_ai_provider")?,
        ai_model: row.named("tenant_ai_model")?,
        ai_quota_exhausted: row.named::<i64>("tenant_ai_quota_exhausted")? != 0,
        tenant_last_active_at: row.named("tenant_last_active_at")?,
        owner_status: row.named("owner_status")?,
        owner_role: row.named("owner_role")?,
        host_owner: row.named("host_owner")?,
        rate_limit: row.named("effective_rate_limit")?,
    };
    Ok((key, auth))
}

/// The rows for several `(prefix, host)` pairs in one query (the coalescer in `lookup`
/// sends every pair that waited while an earlier query ran).
pub async fn find_many_for_auth(db: &Db, keys: &[AuthKey]) -> Result<Vec<(AuthKey, AuthRow)>, AppError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = auth_sql(keys.len());
    let mut query = sqlx::query(&sql);
    for (prefix, host) in keys {
        query = query.bind(prefix).bind(host);
    }
    let rows = query.fetch_all(db).await?;
    Ok(rows.iter().map(auth_row).collect::<Result<_, _>>()?)
}

/// The row for one token, read on its own (leak reports; requests go through `lookup`).
pub async fn find_for_auth(db: &Db, prefix: &str, host: &str) -> Result<Option<AuthRow>, AppError> {
    let key = (prefix.to_string(), host.to_string());
    Ok(find_many_for_auth(db, std::slice::from_ref(&key)).await?.into_iter().next().map(|(_, row)| row))
}

/// Records a use, at most once a minute per token (the WHERE makes it so across instances).
/// Returns whether the address is new for this token.
pub async fn touch(db: &Db, id: &str, ip: Option<&str>, now: i64) -> Result<bool, AppError> {
    sqlx::query(
        "UPDATE api_tokens SET last_used_at = $1, last_used_ip = $2 \
         WHERE id = $3 AND (last_used_at IS NULL OR last_used_at <= $4 OR last_used_ip IS NULL OR last_used_ip <> $2)",
    )
    .bind(now)
    .bind(ip)
    .bind(id)
    .bind(now - 60)
    .execute(db)
    .await?;
    let Some(ip) = ip else { return Ok(false) };
    let known = sqlx::query("UPDATE api_token_ips SET last_seen_at = $1 WHERE token_id = $2 AND ip = $3")
        .bind(now)
        .bind(id)
        .bind(ip)
        .execute(db)
        .await?;
    if known.rows_affected() > 0 {
        return Ok(false);
    }
    let seen = sqlx::query(
        "INSERT INTO api_token_ips (token_id, ip, first_seen_at, last_seen_at) VALUES ($1, $2, $3, $3) \
         ON CONFLICT (token_id, ip) DO NOTHING",
    )
    .bind(id)
    .bind(ip)
    .bind(now)
    .execute(db)
    .await?;
    Ok(seen.rows_affected() == 1)
}

/// The tenant's last activity, at most once a day.
pub async fn touch_tenant(db: &Db, tenant_id: &str, now: i64) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE tenants SET last_active_at = $1 WHERE id = $2 AND (last_active_at IS NULL OR last_active_at <= $3)",
    )
    .bind(now)
    .bind(tenant_id)
    .bind(now - 86_400)
    .execute(db)
    .await?;
    Ok(())
}

/// Project ids and keys of a tenant for the given keys (unknown keys are simply absent).
pub async fn projects_by_keys(db: &Db, tenant_id: &str, keys: &[String]) -> Result<Vec<(String, String)>, AppError> {
    let mut found = Vec::with_capacity(keys.len());
    for key in keys {
        let row = sqlx::query("SELECT id, key FROM projects WHERE tenant_id = $1 AND key = $2")
            .bind(tenant_id)
            .bind(key)
            .fetch_optional(db)
            .await?;
        if let Some(row) = row {
            found.push((row.try_get("id")?, row.try_get("key")?));
        }
    }
    Ok(found)
}

/// Adds counts to the per-day rows (tokens deleted meanwhile are skipped) and drops rows
/// older than `oldest_kept`, in one transaction.
pub async fn add_usage(db: &Db, rows: &[(&str, i64, UsageCounts)], oldest_kept: i64) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    for (token_id, day, c) in rows {
        sqlx::query(
            "INSERT INTO api_token_usage (token_id, day, reads, writes, admins) \
             SELECT id, $2, $3, $4, $5 FROM api_tokens WHERE id = $1 \
             ON CONFLICT (token_id, day) DO UPDATE SET reads = api_token_usage.reads + excluded.reads, \
             writes = api_token_usage.writes + excluded.writes, admins = api_token_usage.admins + excluded.admins",
        )
        .bind(*token_id)
        .bind(*day)
        .bind(c.read as i64)
        .bind(c.write as i64)
        .bind(c.admin as i64)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("DELETE FROM api_token_usage WHERE day < $1").bind(oldest_kept).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Counts of requests by kind, as `api_token_usage` names them.
#[derive(sqlx::FromRow)]
struct UsageRow {
    reads: i64,
    writes: i64,
    admins: i64,
}

impl UsageRow {
    fn counts(&self) -> UsageCounts {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        UsageCounts { read: n(self.reads), write: n(self.writes), admin: n(self.admins) }
    }
}

#[derive(sqlx::FromRow)]
struct UsageDay {
    day: i64,
    #[sqlx(flatten)]
    usage: UsageRow,
}

#[derive(sqlx::FromRow)]
struct UsageTotal {
    token_id: String,
    #[sqlx(flatten)]
    usage: UsageRow,
}

/// A token's written counts per day since `from_day`.
pub async fn usage_days(db: &Db, token_id: &str, from_day: i64) -> Result<Vec<(i64, UsageCounts)>, AppError> {
    let rows: Vec<UsageDay> = sqlx::query_as(
        "SELECT day, reads, writes, admins FROM api_token_usage WHERE token_id = $1 AND day >= $2 ORDER BY day",
    )
    .bind(token_id)
    .bind(from_day)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|r| (r.day, r.usage.counts())).collect())
}

/// Written totals since `from_day` for a set of tokens (absent: no use).
pub async fn usage_totals(db: &Db, token_ids: &[&str], from_day: i64) -> Result<Vec<(String, UsageCounts)>, AppError> {
    if token_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT token_id, CAST(SUM(reads) AS BIGINT) AS reads, CAST(SUM(writes) AS BIGINT) AS writes, \
         CAST(SUM(admins) AS BIGINT) AS admins FROM api_token_usage WHERE day >= $1 AND token_id IN ({}) GROUP BY token_id",
        placeholders(2, token_ids.len())
    );
    let mut query = sqlx::query_as::<_, UsageTotal>(&sql).bind(from_day);
    for id in token_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(db).await?.into_iter().map(|r| (r.token_id, r.usage.counts())).collect())
}

/// A token that replaces another.
#[derive(sqlx::FromRow)]
struct Replacement {
    replaces_id: String,
    id: String,
    prefix: String,
}

/// Rotations under way: `(old id, new id, new prefix)` for tokens that replace these.
pub async fn replacements(db: &Db, token_ids: &[&str]) -> Result<Vec<(String, String, String)>, AppError> {
    if token_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT replaces_id, id, prefix FROM api_tokens WHERE replaces_id IN ({}) ORDER BY created_at",
        placeholders(1, token_ids.len())
    );
    let mut query = sqlx::query_as::<_, Replacement>(&sql);
    for id in token_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(db).await?.into_iter().map(|r| (r.replaces_id, r.id, r.prefix)).collect())
}

/// The addresses a token was last used from, most recent first.
pub async fn recent_addresses(db: &Db, token_id: &str, limit: i64) -> Result<Vec<TokenAddress>, AppError> {
    let rows = sqlx::query(
        "SELECT ip, first_seen_at, last_seen_at FROM api_token_ips WHERE token_id = $1 \
         ORDER BY COALESCE(last_seen_at, first_seen_at) DESC, ip LIMIT $2",
    )
    .bind(token_id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    let address = |row: &AnyRow| -> Result<TokenAddress, sqlx::Error> {
        let first: i64 = row.try_get("first_seen_at")?;
        let last: Option<i64> = row.try_get("last_seen_at")?;
        Ok(TokenAddress {
            ip: row.try_get("ip")?,
            first_seen_at: crate::db::timestamp(first),
            last_seen_at: crate::db::timestamp(last.unwrap_or(first)),
        })
    };
    Ok(rows.iter().map(address).collect::<Result<_, _>>()?)
}

/// Tokens a person created that work now (active, not expired, not past a rotation
/// window), whoever owns them, with their tenant's name. All tenants, or one.
pub async fn live_tokens_created_by(
    db: &Db,
    user_id: &str,
    tenant_id: Option<&str>,
    now: i64,
) -> Result<Vec<(String, TokenRow)>, AppError> {
    let rows = sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS}, tn.name AS tenant_name FROM api_tokens t LEFT JOIN users u ON u.id = t.created_by \
         JOIN tenants tn ON tn.id = t.tenant_id \
         WHERE t.created_by = $1 AND {} = 'active' \
         AND ($3 = '' OR t.tenant_id = $3) ORDER BY tn.name, t.created_at DESC, t.id",
        status_sql("$2")
    ))
    .bind(user_id)
    .bind(now)
    .bind(tenant_id.unwrap_or(""))
    .fetch_all(db)
    .await?;
    rows.iter().map(|row| Ok((row.try_get::<String, _>("tenant_name")?, token_row(row)?))).collect()
}
