//! SQL for cases, runs and results. Always scoped to a project id the service resolved.

use sqlx::{any::AnyRow, Any, Row, Transaction};

use crate::{
    db::{on_unique, timestamp, Db},
    error::AppError,
    testing::{Case, CiContext, Counts, ResultStatus, Run, RunStatus, TestResult},
};

fn case_from(row: &AnyRow, project: &str) -> Result<Case, sqlx::Error> {
    Ok(Case {
        id: row.try_get("id")?,
        project: project.to_string(),
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        created_at: timestamp(row.try_get("created_at")?),
        updated_at: timestamp(row.try_get("updated_at")?),
    })
}

const CASE_COLUMNS: &str = "id, title, description, created_at, updated_at";

pub async fn insert_case(db: &Db, project_id: &str, case: &Case) -> Result<(), AppError> {
    sqlx::query("INSERT INTO cases (id, project_id, title, description, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(&case.id)
        .bind(project_id)
        .bind(&case.title)
        .bind(&case.description)
        .bind(case.created_at.unix_timestamp())
        .bind(case.updated_at.unix_timestamp())
        .execute(db)
        .await
        .map_err(|e| on_unique(e, || AppError::conflict(format!("A case titled {:?} already exists.", case.title))))?;
    Ok(())
}

pub async fn find_case(db: &Db, project_id: &str, project: &str, id: &str) -> Result<Option<Case>, AppError> {
    let row = sqlx::query(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE project_id = $1 AND id = $2"))
        .bind(project_id)
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.as_ref().map(|r| case_from(r, project)).transpose()?)
}

/// A page in creation order after the keyset cursor `(created_at, id)`.
pub async fn list_cases(
    db: &Db,
    project_id: &str,
    project: &str,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<Case>, AppError> {
    let (at, id) = after.unwrap_or((i64::MIN, String::new()));
    let rows = sqlx::query(&format!(
        "SELECT {CASE_COLUMNS} FROM cases WHERE project_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3)) \
         ORDER BY created_at, id LIMIT $4"
    ))
    .bind(project_id)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(rows.iter().map(|r| case_from(r, project)).collect::<Result<_, _>>()?)
}

pub async fn update_case(db: &Db, case: &Case) -> Result<(), AppError> {
    sqlx::query("UPDATE cases SET title = $1, description = $2, updated_at = $3 WHERE id = $4")
        .bind(&case.title)
        .bind(&case.description)
        .bind(case.updated_at.unix_timestamp())
        .bind(&case.id)
        .execute(db)
        .await
        .map_err(|e| on_unique(e, || AppError::conflict(format!("A case titled {:?} already exists.", case.title))))?;
    Ok(())
}

/// Deletes a case and its results, taking their tally from each run they were in.
pub async fn delete_case(db: &Db, id: &str) -> Result<(), AppError> {
    let mut tx = db.begin().await?;
    if crate::db::backend_of(db) == crate::db::Backend::Postgres {
        // Locked first: an import's result for this case (its foreign key takes a key-share
        // lock) waits for this delete and then fails, instead of landing between the
        // results read below and the cascade, uncounted. (SQLite's writer lock does this.)
        sqlx::query("SELECT id FROM cases WHERE id = $1 FOR UPDATE").bind(id).fetch_optional(&mut *tx).await?;
    }
    let gone = sqlx::query("DELETE FROM results WHERE case_id = $1 RETURNING run_id, status, duration_ms")
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
    // Runs in a fixed order: two deletes touching the same runs never lock them crosswise.
    let mut tallies: std::collections::BTreeMap<String, Tally> = Default::default();
    for row in &gone {
        let status: String = row.try_get("status")?;
        let duration: Option<i64> = row.try_get("duration_ms")?;
        tallies
            .entry(row.try_get("run_id")?)
            .or_default()
            .add(ResultStatus::parse(&status).unwrap_or(ResultStatus::Error), duration.map(|d| d.max(0) as u64));
    }
    for (run_id, tally) in tallies {
        add_tally(&mut tx, &run_id, tally.negated(), None).await?;
    }
    sqlx::query("DELETE FROM cases WHERE id = $1").bind(id).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The case with this title, created if the project has none; returns its id.
pub async fn case_by_title(
    tx: &mut Transaction<'_, Any>,
    project_id: &str,
    title: &str,
    now: i64,
) -> Result<String, AppError> {
    let found = sqlx::query("SELECT id FROM cases WHERE project_id = $1 AND title = $2")
        .bind(project_id)
        .bind(title)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some(row) = found {
        return Ok(row.try_get("id")?);
    }
    let id = crate::db::row_id();
    sqlx::query("INSERT INTO cases (id, project_id, title, description, created_at, updated_at) VALUES ($1, $2, $3, '', $4, $4)")
        .bind(&id)
        .bind(project_id)
        .bind(title)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(id)
}

pub async fn case_exists(tx: &mut Transaction<'_, Any>, project_id: &str, id: &str) -> Result<bool, AppError> {
    let found = sqlx::query("SELECT id FROM cases WHERE project_id = $1 AND id = $2")
        .bind(project_id)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
    Ok(found.is_some())
}

// ---- runs ------------------------------------------------------------------------

pub struct RunRow {
    pub id: String,
    pub name: String,
    pub status: RunStatus,
    pub source: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub run_key: Option<String>,
    pub shards: i64,
    pub uploaded_by: Option<String>,
    pub ci: CiContext,
    /// Imports still writing their results into it.
    pub importing: i64,
    /// Its results' counts and summed duration, kept on its row.
    pub counts: Counts,
    pub duration_ms: u64,
}

const RUN_COLUMNS: &str = "id, name, status, source, created_at, updated_at, run_key, shards, uploaded_by, \
     commit_sha, branch, build_url, job, importing, passed_count, failed_count, skipped_count, error_count, \
     duration_total_ms";

/// What some results add to (or take from) their run's counts, kept on the run's row in
/// the transaction that writes or deletes them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    pub passed: i64,
    pub failed: i64,
    pub skipped: i64,
    pub error: i64,
    pub duration_ms: f64,
}

impl Tally {
    pub fn of(results: impl IntoIterator<Item = (ResultStatus, Option<u64>)>) -> Self {
        let mut t = Tally::default();
        for (status, duration) in results {
            t.add(status, duration);
        }
        t
    }

    pub fn add(&mut self, status: ResultStatus, duration_ms: Option<u64>) {
        match status {
            ResultStatus::Passed => self.passed += 1,
            ResultStatus::Failed => self.failed += 1,
            ResultStatus::Skipped => self.skipped += 1,
            ResultStatus::Error => self.error += 1,
        }
        // As stored: durations past i64::MAX are kept as i64::MAX.
        self.duration_ms += duration_ms.map_or(0, |d| d.min(i64::MAX as u64)) as f64;
    }

    pub fn negated(self) -> Self {
        Tally {
            passed: -self.passed,
            failed: -self.failed,
            skipped: -self.skipped,
            error: -self.error,
            duration_ms: -self.duration_ms,
        }
    }
}

/// The statement that adds a tally to a run and, for a batch, marks it written now: `$1`
/// now (NULL: left as it was), `$2`..`$6` the tally, `$7` the run (SQLite numbers `?1`.. the same way: `store`, `sqlite_batches`
/// and `postgres_batches` bind it alike).
pub const ADD_TALLY: &str = "UPDATE runs SET updated_at = COALESCE($1, updated_at), passed_count = passed_count + $2, \
     failed_count = failed_count + $3, skipped_count = skipped_count + $4, error_count = error_count + $5, \
     duration_total_ms = duration_total_ms + $6 WHERE id = $7";

async fn add_tally(
    tx: &mut Transaction<'_, Any>,
    run_id: &str,
    tally: Tally,
    now: Option<i64>,
) -> Result<(), AppError> {
    sqlx::query(ADD_TALLY)
        .bind(now)
        .bind(tally.passed)
        .bind(tally.failed)
        .bind(tally.skipped)
        .bind(tally.error)
        .bind(tally.duration_ms)
        .bind(run_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn run_row(row: &AnyRow) -> Result<RunRow, sqlx::Error> {
    let status: String = row.try_get("status")?;
    Ok(RunRow {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Open),
        source: row.try_get("source")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        run_key: row.try_get("run_key")?,
        shards: row.try_get("shards")?,
        uploaded_by: row.try_get("uploaded_by")?,
        ci: CiContext {
            commit: row.try_get("commit_sha")?,
            branch: row.try_get("branch")?,
            build_url: row.try_get("build_url")?,
            job: row.try_get("job")?,
        },
        importing: row.try_get("importing")?,
        counts: {
            let n = |column: &str| row.try_get::<i64, _>(column).map(|n| n.max(0) as u64);
            let (passed, failed, skipped, error) =
                (n("passed_count")?, n("failed_count")?, n("skipped_count")?, n("error_count")?);
            Counts { total: passed + failed + skipped + error, passed, failed, skipped, error }
        },
        // `as` saturates: a sum past u64::MAX reads as u64::MAX.
        duration_ms: row.try_get::<f64, _>("duration_total_ms")?.max(0.0) as u64,
    })
}

/// Inserts the run; a keyed run that exists already is left as it is (`false`).
pub async fn insert_run(tx: &mut Transaction<'_, Any>, project_id: &str, run: &RunRow) -> Result<bool, AppError> {
    let done = sqlx::query(
        "INSERT INTO runs (id, project_id, name, status, source, created_at, updated_at, run_key, shards, \
         uploaded_by, commit_sha, branch, build_url, job, importing) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) ON CONFLICT DO NOTHING",
    )
    .bind(&run.id)
    .bind(project_id)
    .bind(&run.name)
    .bind(run.status.as_str())
    .bind(&run.source)
    .bind(run.created_at)
    .bind(run.updated_at)
    .bind(&run.run_key)
    .bind(run.shards)
    .bind(&run.uploaded_by)
    .bind(&run.ci.commit)
    .bind(&run.ci.branch)
    .bind(&run.ci.build_url)
    .bind(&run.ci.job)
    .bind(run.importing)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Counts one more shard (and one more import landing) into the open run with this key
/// and returns it. `None`: it is completed.
pub async fn add_shard(
    tx: &mut Transaction<'_, Any>,
    project_id: &str,
    run_key: &str,
    now: i64,
) -> Result<Option<RunRow>, AppError> {
    let done = sqlx::query(
        "UPDATE runs SET shards = shards + 1, importing = importing + 1, updated_at = $1 \
         WHERE project_id = $2 AND run_key = $3 AND status = 'open'",
    )
    .bind(now)
    .bind(project_id)
    .bind(run_key)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE project_id = $1 AND run_key = $2"))
        .bind(project_id)
        .bind(run_key)
        .fetch_one(&mut **tx)
        .await?;
    Ok(Some(run_row(&row)?))
}

/// Closes an open run whose imports have all landed: failed when any result failed or
/// errored, else passed. `false`: imports are still landing in it.
pub async fn complete_run(db: &Db, run_id: &str, now: i64) -> Result<bool, AppError> {
    let done = sqlx::query(
        "UPDATE runs SET updated_at = $1, status = CASE WHEN failed_count + error_count > 0 THEN 'failed' \
         ELSE 'passed' END WHERE id = $2 AND status = 'open' AND importing = 0",
    )
    .bind(now)
    .bind(run_id)
    .execute(db)
    .await?;
    if done.rows_affected() == 1 {
        return Ok(true);
    }
    let row = sqlx::query("SELECT importing FROM runs WHERE id = $1").bind(run_id).fetch_one(db).await?;
    Ok(row.try_get::<i64, _>("importing")? == 0)
}

// ---- idempotency keys -------------------------------------------------------------

/// How long an import's idempotency key answers the same run.
pub const IMPORT_KEY_TTL_SECS: i64 = 24 * 3600;

/// What an earlier import with the same key stored.
pub struct KeyedImport {
    pub fingerprint: String,
    pub run_id: Option<String>,
    /// Empty until the import has landed.
    pub receipt: String,
    /// The import holding the key, the server instance running it, its last sign of life.
    pub import_id: Option<String>,
    pub instance: Option<String>,
    pub heartbeat_at: Option<i64>,
}

/// Who holds a key: this import, on this server instance.
pub struct Holder<'a> {
    pub import_id: &'a str,
    pub instance: &'a str,
}

/// Claims `key` in project `project_id` for this import inside its transaction (keys
/// older than a day are dropped first). Keys belong to one project: the same key in
/// another project is another key. `Some`: another import holds it (committed; on
/// PostgreSQL a concurrent claim waits for the holder's commit), so this one answers from it.
pub async fn claim_key(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &str,
    project_id: &str,
    key: &str,
    fingerprint: &str,
    holder: &Holder<'_>,
    now: i64,
) -> Result<Option<KeyedImport>, AppError> {
    sqlx::query("DELETE FROM import_keys WHERE tenant_id = $1 AND created_at < $2")
        .bind(tenant_id)
        .bind(now - IMPORT_KEY_TTL_SECS)
        .execute(&mut **tx)
        .await?;
    let claimed = sqlx::query(
        "INSERT INTO import_keys (tenant_id, project_id, key, fingerprint, created_at, import_id, instance, heartbeat_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $5) ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(project_id)
    .bind(key)
    .bind(fingerprint)
    .bind(now)
    .bind(holder.import_id)
    .bind(holder.instance)
    .execute(&mut **tx)
    .await?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT fingerprint, run_id, receipt, import_id, instance, heartbeat_at FROM import_keys \
         WHERE tenant_id = $1 AND project_id = $2 AND key = $3",
    )
    .bind(tenant_id)
    .bind(project_id)
    .bind(key)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some(KeyedImport {
        fingerprint: row.try_get("fingerprint")?,
        run_id: row.try_get("run_id")?,
        receipt: row.try_get("receipt")?,
        import_id: row.try_get("import_id")?,
        instance: row.try_get("instance")?,
        heartbeat_at: row.try_get("heartbeat_at")?,
    }))
}

/// Hands a key whose import was abandoned to this one (only if it still names the
/// abandoned import: two retries never both take it).
pub async fn take_over_key(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &str,
    project_id: &str,
    key: &str,
    abandoned: Option<&str>,
    holder: &Holder<'_>,
    now: i64,
) -> Result<bool, AppError> {
    let done = sqlx::query(
        "UPDATE import_keys SET import_id = $1, instance = $2, heartbeat_at = $3, run_id = NULL, receipt = '' \
         WHERE tenant_id = $4 AND project_id = $5 AND key = $6 AND receipt = '' \
         AND COALESCE(import_id, '') = COALESCE($7, '')",
    )
    .bind(holder.import_id)
    .bind(holder.instance)
    .bind(now)
    .bind(tenant_id)
    .bind(project_id)
    .bind(key)
    .bind(abandoned)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The run a key's import writes to, and a sign of life each batch; `false` when the key
/// is no longer this import's (it was taken over: this import must stop).
pub async fn hold_key(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &str,
    project_id: &str,
    key: &str,
    import_id: &str,
    run_id: &str,
    now: i64,
) -> Result<bool, AppError> {
    let done = sqlx::query(
        "UPDATE import_keys SET run_id = $1, heartbeat_at = $2 \
         WHERE tenant_id = $3 AND project_id = $4 AND key = $5 AND import_id = $6",
    )
    .bind(run_id)
    .bind(now)
    .bind(tenant_id)
    .bind(project_id)
    .bind(key)
    .bind(import_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records what the import that holds `key` made: a repeat now answers it. `false` when
/// the key is no longer this import's.
pub async fn settle_key(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &str,
    project_id: &str,
    key: &str,
    import_id: &str,
    receipt: &str,
) -> Result<bool, AppError> {
    let done = sqlx::query(
        "UPDATE import_keys SET receipt = $1 WHERE tenant_id = $2 AND project_id = $3 AND key = $4 AND import_id = $5",
    )
    .bind(receipt)
    .bind(tenant_id)
    .bind(project_id)
    .bind(key)
    .bind(import_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn find_run(db: &Db, project_id: &str, id: &str) -> Result<Option<RunRow>, AppError> {
    let row = sqlx::query(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE project_id = $1 AND id = $2"))
        .bind(project_id)
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(row.as_ref().map(run_row).transpose()?)
}

/// Newest first, after the keyset cursor, optionally one status only.
pub async fn list_runs(
    db: &Db,
    project_id: &str,
    status: Option<RunStatus>,
    run_key: Option<&str>,
    before: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<RunRow>, AppError> {
    let (at, id) = before.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(&format!(
        "SELECT {RUN_COLUMNS} FROM runs WHERE project_id = $1 \
         AND ($2 = '' OR ($2 = 'importing' AND importing > 0) OR (status = $2 AND importing = 0)) AND ($6 = '' OR run_key = $6) \
         AND (created_at < $3 OR (created_at = $3 AND ($4 = '' OR id < $4))) ORDER BY created_at DESC, id DESC LIMIT $5"
    ))
    .bind(project_id)
    .bind(status.map_or("", RunStatus::as_str))
    .bind(at)
    .bind(id)
    .bind(limit)
    .bind(run_key.unwrap_or(""))
    .fetch_all(db)
    .await?;
    Ok(rows.iter().map(run_row).collect::<Result<_, _>>()?)
}

pub async fn update_run(db: &Db, run: &RunRow) -> Result<(), AppError> {
    sqlx::query("UPDATE runs SET name = $1, status = $2, updated_at = $3 WHERE id = $4")
        .bind(&run.name)
        .bind(run.status.as_str())
        .bind(run.updated_at)
        .bind(&run.id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn delete_run(db: &Db, id: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM runs WHERE id = $1").bind(id).execute(db).await?;
    Ok(())
}

pub fn run_from(row: RunRow, project: &str) -> Run {
    Run {
        id: row.id,
        project: project.to_string(),
        name: row.name,
        // Importing until its last result has landed, then what it stored.
        status: if row.importing > 0 { RunStatus::Importing } else { row.status },
        source: row.source,
        counts: row.counts,
        duration_ms: row.duration_ms,
        run_key: row.run_key,
        shards: u32::try_from(row.shards).unwrap_or(u32::MAX),
        uploaded_by: row.uploaded_by,
        ci: row.ci,
        created_at: timestamp(row.created_at),
        updated_at: timestamp(row.updated_at),
    }
}

// ---- results -----------------------------------------------------------------------

pub struct NewResultRow<'a> {
    pub case_id: &'a str,
    pub status: ResultStatus,
    pub duration_ms: Option<u64>,
    pub message: Option<&'a str>,
}

pub async fn next_seq(tx: &mut Transaction<'_, Any>, run_id: &str) -> Result<i64, AppError> {
    let row = sqlx::query("SELECT MAX(seq) AS max_seq FROM results WHERE run_id = $1")
        .bind(run_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get::<Option<i64>, _>("max_seq")?.unwrap_or(0) + 1)
}

pub async fn insert_result(
    tx: &mut Transaction<'_, Any>,
    run_id: &str,
    seq: i64,
    r: &NewResultRow<'_>,
    now: i64,
) -> Result<(), AppError> {
    sqlx::query(
        "INSERT INTO results (id, run_id, case_id, status, duration_ms, message, created_at, seq) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(crate::db::row_id())
    .bind(run_id)
    .bind(r.case_id)
    .bind(r.status.as_str())
    .bind(r.duration_ms.map(|d| d.min(i64::MAX as u64) as i64))
    .bind(r.message)
    .bind(now)
    .bind(seq)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A case's id by its title.
#[derive(sqlx::FromRow)]
struct CaseTitle {
    title: String,
    id: String,
}

/// Case ids by title in the project, creating the cases it lacks: one query to read, one
/// multi-row insert for the missing that answers what it inserted (a title another import
/// created meanwhile is read back). `titles` holds at most a batch.
pub async fn cases_for_titles(
    tx: &mut Transaction<'_, Any>,
    project_id: &str,
    titles: &[&str],
    now: i64,
) -> Result<std::collections::HashMap<String, String>, AppError> {
    let mut unique: Vec<&str> = titles.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut found = select_cases(tx, project_id, &unique).await?;
    let missing: Vec<&str> = unique.iter().copied().filter(|t| !found.contains_key(*t)).collect();
    if !missing.is_empty() {
        let values: Vec<String> =
            (0..missing.len()).map(|i| format!("(${}, $1, ${}, '', $2, $2)", 3 + 2 * i, 4 + 2 * i)).collect();
        let sql = format!(
            "INSERT INTO cases (id, project_id, title, description, created_at, updated_at) VALUES {} \
             ON CONFLICT (project_id, title) DO NOTHING RETURNING title, id",
            values.join(", ")
        );
        let mut query = sqlx::query_as::<_, CaseTitle>(&sql).bind(project_id).bind(now);
        for title in &missing {
            query = query.bind(crate::db::row_id()).bind(*title);
        }
        found.extend(query.fetch_all(&mut **tx).await?.into_iter().map(|c| (c.title, c.id)));
        let raced: Vec<&str> = missing.into_iter().filter(|t| !found.contains_key(*t)).collect();
        if !raced.is_empty() {
            found.extend(select_cases(tx, project_id, &raced).await?);
        }
    }
    Ok(found)
}

async fn select_cases(
    tx: &mut Transaction<'_, Any>,
    project_id: &str,
    titles: &[&str],
) -> Result<std::collections::HashMap<String, String>, AppError> {
    if titles.is_empty() {
        return Ok(Default::default());
    }
    let placeholders: Vec<String> = (0..titles.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!("SELECT title, id FROM cases WHERE project_id = $1 AND title IN ({})", placeholders.join(", "));
    let mut query = sqlx::query_as::<_, CaseTitle>(&sql).bind(project_id);
    for title in titles {
        query = query.bind(*title);
    }
    Ok(query.fetch_all(&mut **tx).await?.into_iter().map(|c| (c.title, c.id)).collect())
}

/// Results numbered from `first_seq`, in one multi-row insert, marked with the import
/// that wrote them.
pub async fn insert_results(
    tx: &mut Transaction<'_, Any>,
    run_id: &str,
    import_id: &str,
    first_seq: i64,
    rows: &[NewResultRow<'_>],
    now: i64,
) -> Result<(), AppError> {
    if rows.is_empty() {
        return Ok(());
    }
    let values: Vec<String> = (0..rows.len())
        .map(|i| {
            let b = 4 + 6 * i;
            format!("(${b}, $1, ${}, ${}, ${}, ${}, $2, ${}, $3)", b + 1, b + 2, b + 3, b + 4, b + 5)
        })
        .collect();
    let sql = format!(
        "INSERT INTO results (id, run_id, case_id, status, duration_ms, message, created_at, seq, import_id) VALUES {}",
        values.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(run_id).bind(now).bind(import_id);
    for (i, r) in rows.iter().enumerate() {
        query = query
            .bind(crate::db::row_id())
            .bind(r.case_id)
            .bind(r.status.as_str())
            .bind(r.duration_ms.map(|d| d.min(i64::MAX as u64) as i64))
            .bind(r.message)
            .bind(first_seq + i as i64);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// The start of one batch's transaction: the run's row is written first (its last sign of
/// life, the batch's tally, and on PostgreSQL a row lock that numbers parallel shards'
/// batches one after another); returns the next free `seq`. A batch that stops before
/// its commit takes its tally back with it.
pub async fn begin_batch(tx: &mut Transaction<'_, Any>, run_id: &str, tally: Tally, now: i64) -> Result<i64, AppError> {
    add_tally(tx, run_id, tally, Some(now)).await?;
    next_seq(tx, run_id).await
}

// ---- imports landing -----------------------------------------------------------

/// Registers an import as landing in `run_id`, run by `instance` (in the transaction that
/// makes or joins the run).
pub async fn begin_import(
    tx: &mut Transaction<'_, Any>,
    import_id: &str,
    run_id: &str,
    instance: &str,
    now: i64,
) -> Result<(), AppError> {
    sqlx::query("INSERT INTO imports (id, run_id, instance, heartbeat_at) VALUES ($1, $2, $3, $4)")
        .bind(import_id)
        .bind(run_id)
        .bind(instance)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The import's sign of life, at each batch; `false` when it was taken back (or its run
/// deleted): the batch must write nothing and the import stop.
pub async fn import_alive(tx: &mut Transaction<'_, Any>, import_id: &str, now: i64) -> Result<bool, AppError> {
    let done = sqlx::query("UPDATE imports SET heartbeat_at = $1 WHERE id = $2 AND taken_back = 0")
        .bind(now)
        .bind(import_id)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// A sign of life for imports this instance runs (landing or taking back), between their
/// batches, and for the keys they hold: however long a batch, a reader or a take-back
/// takes, no sweep or retry elsewhere takes them for abandoned.
pub async fn show_life(db: &Db, instance: &str, import_ids: &[String], now: i64) -> Result<(), AppError> {
    for ids in import_ids.chunks(100) {
        let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
        let list = placeholders.join(", ");
        let imports = format!("UPDATE imports SET heartbeat_at = $1 WHERE instance = $2 AND id IN ({list})");
        let keys = format!(
            "UPDATE import_keys SET heartbeat_at = $1 WHERE instance = $2 AND receipt = '' AND import_id IN ({list})"
        );
        for sql in [imports, keys] {
            let mut query = sqlx::query(&sql).bind(now).bind(instance);
            for id in ids {
                query = query.bind(id);
            }
            query.execute(db).await?;
        }
    }
    Ok(())
}

/// One import has landed in the run; `false` (write nothing) when it was taken back
/// meanwhile.
pub async fn import_landed(
    tx: &mut Transaction<'_, Any>,
    import_id: &str,
    run_id: &str,
    now: i64,
) -> Result<bool, AppError> {
    let ours =
        sqlx::query("DELETE FROM imports WHERE id = $1 AND taken_back = 0").bind(import_id).execute(&mut **tx).await?;
    if ours.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("UPDATE runs SET importing = importing - 1, updated_at = $1 WHERE id = $2 AND importing > 0")
        .bind(now)
        .bind(run_id)
        .execute(&mut **tx)
        .await?;
    Ok(true)
}

/// Whether an import is still landing (registered, not taken back).
pub async fn import_landing(tx: &mut Transaction<'_, Any>, import_id: &str) -> Result<bool, AppError> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM imports WHERE id = $1 AND taken_back = 0")
        .bind(import_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// An import that may never finish.
pub struct Landing {
    pub import_id: String,
    pub run_id: String,
    pub instance: String,
    pub heartbeat_at: i64,
}

/// Imports with no sign of life since `quiet_since`, and every import `instance` runs
/// (the caller knows which of those are still alive), oldest first, at most 100.
pub async fn landing_imports(db: &Db, quiet_since: i64, instance: &str) -> Result<Vec<Landing>, AppError> {
    let rows = sqlx::query(
        "SELECT id, run_id, instance, heartbeat_at FROM imports \
         WHERE heartbeat_at < $1 OR instance = $2 ORDER BY heartbeat_at LIMIT 100",
    )
    .bind(quiet_since)
    .bind(instance)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Landing {
                import_id: row.try_get("id")?,
                run_id: row.try_get("run_id")?,
                instance: row.try_get("instance")?,
                heartbeat_at: row.try_get("heartbeat_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// Marks an import taken back by `instance`, so its batches stop: only if it still shows
/// no sign of life since `quiet_since` (`None`: whatever it shows, for an import known to
/// be dead, unless another instance is taking it back already). `false`: it lived, or has
/// landed, or another took it back first and is still at it.
pub async fn mark_taken_back(
    db: impl sqlx::Executor<'_, Database = Any>,
    import_id: &str,
    instance: &str,
    quiet_since: Option<i64>,
    now: i64,
) -> Result<bool, AppError> {
    let done = sqlx::query(
        "UPDATE imports SET taken_back = 1, instance = $1, heartbeat_at = $2 \
         WHERE id = $3 AND (heartbeat_at < $4 OR ($5 = 1 AND (taken_back = 0 OR instance = $1)))",
    )
    .bind(instance)
    .bind(now)
    .bind(import_id)
    .bind(quiet_since.unwrap_or(i64::MIN))
    .bind(i64::from(quiet_since.is_none()))
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Rows one statement of a take-back deletes: a few milliseconds of SQLite's write lock.
pub const TAKE_BACK_CHUNK: i64 = 1000;

/// Deletes up to [`TAKE_BACK_CHUNK`] of an import's results after `after_seq`, and their
/// tally from the run, in a transaction of its own; answers the last `seq` deleted
/// (`None`: nothing was left).
pub async fn take_back_chunk(db: &Db, run_id: &str, import_id: &str, after_seq: i64) -> Result<Option<i64>, AppError> {
    let mut tx = db.begin().await?;
    // The delete comes first: on SQLite a transaction that writes first queues for the lock.
    let gone = sqlx::query(
        "DELETE FROM results WHERE run_id = $1 AND import_id = $3 AND seq > $2 AND seq <= (SELECT MAX(seq) FROM \
         (SELECT seq FROM results WHERE run_id = $1 AND seq > $2 AND import_id = $3 ORDER BY seq LIMIT $4) AS chunk) \
         RETURNING seq, status, duration_ms",
    )
    .bind(run_id)
    .bind(after_seq)
    .bind(import_id)
    .bind(TAKE_BACK_CHUNK)
    .fetch_all(&mut *tx)
    .await?;
    let mut tally = Tally::default();
    let mut last = None;
    for row in &gone {
        let seq: i64 = row.try_get("seq")?;
        last = Some(last.map_or(seq, |l: i64| l.max(seq)));
        let status: String = row.try_get("status")?;
        let duration: Option<i64> = row.try_get("duration_ms")?;
        tally.add(ResultStatus::parse(&status).unwrap_or(ResultStatus::Error), duration.map(|d| d.max(0) as u64));
    }
    if last.is_some() {
        add_tally(&mut tx, run_id, tally.negated(), None).await?;
    }
    tx.commit().await?;
    Ok(last)
}

/// The end of a take-back, once the import's results are gone: its run is given up (a
/// run of its own deleted; a sharded run has one import, one shard fewer) and a key it
/// held unsettled is released, so a retry starts afresh. Done once: `false` when another
/// finished it first.
pub async fn taken_back(tx: &mut Transaction<'_, Any>, import_id: &str, run_id: &str) -> Result<bool, AppError> {
    let ours = sqlx::query("DELETE FROM imports WHERE id = $1").bind(import_id).execute(&mut **tx).await?;
    if ours.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("DELETE FROM import_keys WHERE import_id = $1 AND receipt = ''")
        .bind(import_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE runs SET importing = importing - 1, shards = CASE WHEN shards > 0 THEN shards - 1 ELSE 0 END \
         WHERE id = $1 AND run_key IS NOT NULL AND importing > 0",
    )
    .bind(run_id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM runs WHERE id = $1 AND run_key IS NULL").bind(run_id).execute(&mut **tx).await?;
    Ok(true)
}

pub async fn list_results(
    db: &Db,
    run_id: &str,
    after_seq: i64,
    limit: i64,
) -> Result<Vec<(i64, TestResult)>, AppError> {
    let rows = sqlx::query(&format!(
        "SELECT {RESULT_COLUMNS} FROM results r JOIN cases c ON c.id = r.case_id \
         WHERE r.run_id = $1 AND r.seq > $2 ORDER BY r.seq LIMIT $3"
    ))
    .bind(run_id)
    .bind(after_seq)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get::<i64, _>("seq")?, result_from(row, run_id)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The columns `result_from` reads (and `seq`), each named by its alias: the case's
/// columns are aliased apart from the result's.
const RESULT_COLUMNS: &str = "r.id AS id, r.case_id AS case_id, c.title AS case_title, r.status AS status, \
     r.duration_ms AS duration_ms, r.message AS message, r.created_at AS created_at, r.seq AS seq";

fn result_from(row: &AnyRow, run_id: &str) -> Result<TestResult, sqlx::Error> {
    let status: String = row.try_get("status")?;
    let duration: Option<i64> = row.try_get("duration_ms")?;
    Ok(TestResult {
        id: row.try_get("id")?,
        run_id: run_id.to_string(),
        case_id: row.try_get("case_id")?,
        case_title: row.try_get("case_title")?,
        status: ResultStatus::parse(&status).unwrap_or(ResultStatus::Error),
        duration_ms: duration.map(|d| d.max(0) as u64),
        message: row.try_get("message")?,
        created_at: timestamp(row.try_get("created_at")?),
    })
}

/// Outcomes in the order the run page shows them: failed, errors, skipped, passed.
pub const PAGE_ORDER: [ResultStatus; 4] =
    [ResultStatus::Failed, ResultStatus::Error, ResultStatus::Skipped, ResultStatus::Passed];

/// A place in the run page's order: an outcome's rank in [`PAGE_ORDER`] and a `seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Place {
    pub rank: usize,
    pub seq: i64,
}

impl Place {
    pub fn of(result_status: ResultStatus, seq: i64) -> Self {
        Place { rank: PAGE_ORDER.iter().position(|s| *s == result_status).unwrap_or(3), seq }
    }
}

/// Which way a page goes from its cursor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Toward {
    /// The page after `Place` (or the first page).
    Later(Option<Place>),
    /// The page before `Place`.
    Earlier(Place),
}

/// A run page's results, in page order, with their places, and whether the order holds
/// more past the last (`more`: one more row was there to read).
pub struct PageRows {
    pub rows: Vec<(Place, TestResult)>,
    pub more: bool,
}

/// A search that matches at most this many of the project's cases reads the run's
/// results of those cases (an index lookup each); one that matches more reads the run in
/// page order and stops at a page (matches are then dense enough to fill one soon).
pub const FEW_CASES: usize = 2000;

/// A LIKE pattern that matches `search` literally, case-insensitively.
fn like_pattern(search: &str) -> String {
    let escaped: String = search
        .to_lowercase()
        .chars()
        .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
        .collect();
    format!("%{escaped}%")
}

async fn has_more_cases_than(db: &Db, project_id: &str, n: i64) -> Result<bool, AppError> {
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM cases WHERE project_id = $1 LIMIT $2) AS few")
            .bind(project_id)
            .bind(n + 1)
            .fetch_one(db)
            .await?;
    Ok(row.try_get::<i64, _>("n")? > n)
}

/// The project's cases whose title contains `search`, at most `FEW_CASES + 1` of them.
/// On PostgreSQL the planner reads the trigram index (migration 17) itself. On SQLite
/// the FTS5 trigram table (migration 17) is read for a search of three characters or
/// more without a LIKE wildcard, in a project of more than `scan_up_to` cases (its
/// matches span every project, so a small project's search never walks other
/// workspaces' matches); anything else reads the project's cases.
pub async fn cases_matching(db: &Db, project_id: &str, search: &str, scan_up_to: i64) -> Result<Vec<String>, AppError> {
    let indexed = crate::db::backend_of(db) == crate::db::Backend::Sqlite
        && search.chars().count() >= 3
        && !search.contains(['%', '_', '\\'])
        && has_more_cases_than(db, project_id, scan_up_to).await?;
    let sql = if indexed {
        // CROSS JOIN keeps SQLite's order: the index's few matches first, then their cases.
        "SELECT c.id FROM case_titles f CROSS JOIN case_title_rows m CROSS JOIN cases c \
         WHERE f.title LIKE $2 AND m.row_id = f.rowid AND c.id = m.case_id AND c.project_id = $1 LIMIT $3"
    } else {
        "SELECT id FROM cases WHERE project_id = $1 AND LOWER(title) LIKE $2 ESCAPE '\\' LIMIT $3"
    };
    let rows =
        sqlx::query(sql).bind(project_id).bind(like_pattern(search)).bind(FEW_CASES as i64 + 1).fetch_all(db).await?;
    rows.iter().map(|row| row.try_get("id")).collect::<Result<_, sqlx::Error>>().map_err(Into::into)
}

/// A search reads the run's results of its matching cases into memory only up to this
/// many; past it (a case repeated in the run thousands of times) it pages like a search
/// matching many cases.
pub const FEW_RESULTS: usize = 2000;

/// Every result of the run for these cases, in page order, optionally one outcome — or
/// `None` when there are more than `FEW_RESULTS` of them.
pub async fn results_of_cases(
    db: &Db,
    run_id: &str,
    case_ids: &[String],
    status: Option<ResultStatus>,
) -> Result<Option<Vec<(Place, TestResult)>>, AppError> {
    let mut out = Vec::new();
    // Bound parameters stay well under both databases' limits.
    for chunk in case_ids.chunks(500) {
        let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM results r JOIN cases c ON c.id = r.case_id \
             WHERE r.case_id IN ({}) AND r.run_id = $1 AND ($2 = '' OR r.status = $2) LIMIT {}",
            placeholders.join(", "),
            FEW_RESULTS + 1 - out.len()
        );
        let mut query = sqlx::query(&sql).bind(run_id).bind(status.map_or("", ResultStatus::as_str));
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(db).await? {
            let result = result_from(&row, run_id)?;
            out.push((Place::of(result.status, row.try_get("seq")?), result));
        }
        if out.len() > FEW_RESULTS {
            return Ok(None);
        }
    }
    out.sort_by_key(|(place, _)| *place);
    Ok(Some(out))
}

/// One page of a run's results in page order — failed first, then errors, skipped,
/// passed, each in report order — from a cursor either way, optionally one outcome and
/// a title search. Each outcome is a range of `results_by_outcome` read from the cursor
/// on: as quick on the last page as on the first.
pub async fn results_page(
    db: &Db,
    run_id: &str,
    status: Option<ResultStatus>,
    search: Option<&str>,
    toward: Toward,
    limit: i64,
) -> Result<PageRows, AppError> {
    let pattern = search.map(like_pattern);
    let (from, later) = match toward {
        Toward::Later(place) => (place, true),
        Toward::Earlier(place) => (Some(place), false),
    };
    let mut ranks: Vec<usize> = (0..PAGE_ORDER.len())
        .filter(|r| status.is_none_or(|s| PAGE_ORDER[*r] == s))
        .filter(|r| match from {
            Some(p) if later => *r >= p.rank,
            Some(p) => *r <= p.rank,
            None => true,
        })
        .collect();
    if !later {
        ranks.reverse();
    }
    let mut rows = Vec::new();
    let wanted = limit + 1;
    for rank in ranks {
        let left = wanted - rows.len() as i64;
        if left <= 0 {
            break;
        }
        // Past the cursor within its own outcome; the whole of any other.
        let bound = match from {
            Some(p) if p.rank == rank => p.seq,
            _ if later => i64::MIN,
            _ => i64::MAX,
        };
        let (cmp, order) = if later { (">", "ASC") } else { ("<", "DESC") };
        let sql = format!(
            "SELECT {RESULT_COLUMNS} FROM results r JOIN cases c ON c.id = r.case_id \
             WHERE r.run_id = $1 AND r.status = $2 AND r.seq {cmp} $3 \
             AND ($5 = '' OR LOWER(c.title) LIKE $5 ESCAPE '\\') ORDER BY r.seq {order} LIMIT $4"
        );
        let found = sqlx::query(&sql)
            .bind(run_id)
            .bind(PAGE_ORDER[rank].as_str())
            .bind(bound)
            .bind(left)
            .bind(pattern.as_deref().unwrap_or(""))
            .fetch_all(db)
            .await?;
        for row in &found {
            rows.push((Place { rank, seq: row.try_get("seq")? }, result_from(row, run_id)?));
        }
    }
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    if !later {
        rows.reverse();
    }
    Ok(PageRows { rows, more })
}

/// How many of the run's results match a title search (and an outcome), counted up to
/// `cap` (`cap` and more: there are at least that many).
pub async fn count_matching(
    db: &Db,
    run_id: &str,
    status: Option<ResultStatus>,
    search: &str,
    cap: i64,
) -> Result<i64, AppError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS total FROM (SELECT 1 AS one FROM results r JOIN cases c ON c.id = r.case_id \
         WHERE r.run_id = $1 AND ($2 = '' OR r.status = $2) AND LOWER(c.title) LIKE $3 ESCAPE '\\' LIMIT $4) AS capped",
    )
    .bind(run_id)
    .bind(status.map_or("", ResultStatus::as_str))
    .bind(like_pattern(search))
    .bind(cap)
    .fetch_one(db)
    .await?;
    Ok(row.try_get("total")?)
}
