//! SQL for cases, runs and results. Always scoped to a project id the service resolved.

use sqlx::{any::AnyRow, Any, Row, Transaction};

use crate::{
    db::{on_unique, timestamp, Db},
    error::AppError,
    testing::{Case, CiContext, Counts, ResultStatus, Run, RunStatus, TestResult},
};

fn case_from(row: &AnyRow, project: &str) -> Result<Case, sqlx::Error> {
    Ok(Case {
        id: row.try_get(0)?,
        project: project.to_string(),
        title: row.try_get(1)?,
        description: row.try_get(2)?,
        created_at: timestamp(row.try_get(3)?),
        updated_at: timestamp(row.try_get(4)?),
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

pub async fn delete_case(db: &Db, id: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM cases WHERE id = $1").bind(id).execute(db).await?;
    Ok(())
}

/// The case with this title, created if the project has none; returns its id.
pub async fn case_by_title(
    tx: &mut Transaction<'_, Any>,
    project_id: &str,
    title: &str,
    now: i64,
) -> Result<String, AppError> {
    let found: Option<(String,)> = sqlx::query_as("SELECT id FROM cases WHERE project_id = $1 AND title = $2")
        .bind(project_id)
        .bind(title)
        .fetch_optional(&mut **tx)
        .await?;
    if let Some((id,)) = found {
        return Ok(id);
    }
    let id = crate::db::new_id();
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
    let found: Option<(String,)> = sqlx::query_as("SELECT id FROM cases WHERE project_id = $1 AND id = $2")
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
}

const RUN_COLUMNS: &str =
    "id, name, status, source, created_at, updated_at, run_key, shards, uploaded_by, commit_sha, branch, build_url, job";

fn run_row(row: &AnyRow) -> Result<RunRow, sqlx::Error> {
    let status: String = row.try_get(2)?;
    Ok(RunRow {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        status: RunStatus::parse(&status).unwrap_or(RunStatus::Open),
        source: row.try_get(3)?,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
        run_key: row.try_get(6)?,
        shards: row.try_get(7)?,
        uploaded_by: row.try_get(8)?,
        ci: CiContext {
            commit: row.try_get(9)?,
            branch: row.try_get(10)?,
            build_url: row.try_get(11)?,
            job: row.try_get(12)?,
        },
    })
}

/// Inserts the run; a keyed run that exists already is left as it is (`false`).
pub async fn insert_run(tx: &mut Transaction<'_, Any>, project_id: &str, run: &RunRow) -> Result<bool, AppError> {
    let done = sqlx::query(
        "INSERT INTO runs (id, project_id, name, status, source, created_at, updated_at, run_key, shards, \
         uploaded_by, commit_sha, branch, build_url, job) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) ON CONFLICT DO NOTHING",
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
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Counts one more shard into the open run with this key and returns it, locked for the
/// rest of the transaction (a row lock on PostgreSQL, the write lock on SQLite), so
/// parallel shards number their results one after another. `None`: it is completed.
pub async fn add_shard(
    tx: &mut Transaction<'_, Any>,
    project_id: &str,
    run_key: &str,
    now: i64,
) -> Result<Option<RunRow>, AppError> {
    let done = sqlx::query(
        "UPDATE runs SET shards = shards + 1, updated_at = $1 WHERE project_id = $2 AND run_key = $3 AND status = 'open'",
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

/// Closes an open run: failed when any result failed or errored, else passed.
pub async fn complete_run(db: &Db, run_id: &str, now: i64) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE runs SET updated_at = $1, status = CASE WHEN EXISTS (SELECT 1 FROM results r WHERE r.run_id = runs.id \
         AND r.status IN ('failed', 'error')) THEN 'failed' ELSE 'passed' END WHERE id = $2 AND status = 'open'",
    )
    .bind(now)
    .bind(run_id)
    .execute(db)
    .await?;
    Ok(())
}

// ---- idempotency keys -------------------------------------------------------------

/// How long an import's idempotency key answers the same run.
pub const IMPORT_KEY_TTL_SECS: i64 = 24 * 3600;

/// What an earlier import with the same key stored.
pub struct KeyedImport {
    pub fingerprint: String,
    pub run_id: Option<String>,
    pub receipt: String,
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
    now: i64,
) -> Result<Option<KeyedImport>, AppError> {
    sqlx::query("DELETE FROM import_keys WHERE tenant_id = $1 AND created_at < $2")
        .bind(tenant_id)
        .bind(now - IMPORT_KEY_TTL_SECS)
        .execute(&mut **tx)
        .await?;
    let claimed = sqlx::query(
        "INSERT INTO import_keys (tenant_id, project_id, key, fingerprint, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant_id)
    .bind(project_id)
    .bind(key)
    .bind(fingerprint)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    if claimed.rows_affected() == 1 {
        return Ok(None);
    }
    let (fingerprint, run_id, receipt): (String, Option<String>, String) = sqlx::query_as(
        "SELECT fingerprint, run_id, receipt FROM import_keys WHERE tenant_id = $1 AND project_id = $2 AND key = $3",
    )
    .bind(tenant_id)
    .bind(project_id)
    .bind(key)
    .fetch_one(&mut **tx)
    .await?;
    Ok(Some(KeyedImport { fingerprint, run_id, receipt }))
}

/// Records what the import that claimed `key` made.
pub async fn settle_key(
    tx: &mut Transaction<'_, Any>,
    tenant_id: &str,
    project_id: &str,
    key: &str,
    run_id: &str,
    receipt: &str,
) -> Result<(), AppError> {
    sqlx::query(
        "UPDATE import_keys SET run_id = $1, receipt = $2 WHERE tenant_id = $3 AND project_id = $4 AND key = $5",
    )
    .bind(run_id)
    .bind(receipt)
    .bind(tenant_id)
    .bind(project_id)
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
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
        "SELECT {RUN_COLUMNS} FROM runs WHERE project_id = $1 AND ($2 = '' OR status = $2) AND ($6 = '' OR run_key = $6) \
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

/// Result counts and total duration per run, for a set of runs.
pub async fn counts(db: &Db, run_ids: &[&str]) -> Result<Vec<(String, Counts, u64)>, AppError> {
    if run_ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=run_ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        // Summed as floating point: durations are stored up to i64::MAX, and an integer
        // SUM of a few of those overflows (an error on both databases).
        "SELECT run_id, status, COUNT(*), CAST(COALESCE(SUM(CAST(duration_ms AS DOUBLE PRECISION)), 0) AS DOUBLE PRECISION) \
         FROM results WHERE run_id IN ({}) GROUP BY run_id, status",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_as::<_, (String, String, i64, f64)>(&sql);
    for id in run_ids {
        query = query.bind(*id);
    }
    let rows = query.fetch_all(db).await?;
    Ok(run_ids
        .iter()
        .map(|id| {
            let mut c = Counts::default();
            let mut duration = 0u64;
            for (_, status, n, ms) in rows.iter().filter(|(r, ..)| r == id) {
                let n = *n as u64;
                c.total += n;
                // `as` saturates: a sum past u64::MAX reads as u64::MAX.
                duration = duration.saturating_add(ms.max(0.0) as u64);
                match ResultStatus::parse(status) {
                    Some(ResultStatus::Passed) => c.passed += n,
                    Some(ResultStatus::Failed) => c.failed += n,
                    Some(ResultStatus::Skipped) => c.skipped += n,
                    _ => c.error += n,
                }
            }
            (id.to_string(), c, duration)
        })
        .collect())
}

pub fn run_from(row: RunRow, project: &str, counts: Counts, duration_ms: u64) -> Run {
    Run {
        id: row.id,
        project: project.to_string(),
        name: row.name,
        status: row.status,
        source: row.source,
        counts,
        duration_ms,
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
    let (max,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(seq) FROM results WHERE run_id = $1").bind(run_id).fetch_one(&mut **tx).await?;
    Ok(max.unwrap_or(0) + 1)
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
    .bind(crate::db::new_id())
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
        .map(|row| Ok((row.try_get::<i64, _>(7)?, result_from(row, run_id)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(Into::into)
}

/// The columns `result_from` reads, in its order (then `seq`).
const RESULT_COLUMNS: &str = "r.id, r.case_id, c.title, r.status, r.duration_ms, r.message, r.created_at, r.seq";

fn result_from(row: &AnyRow, run_id: &str) -> Result<TestResult, sqlx::Error> {
    let status: String = row.try_get(3)?;
    let duration: Option<i64> = row.try_get(4)?;
    Ok(TestResult {
        id: row.try_get(0)?,
        run_id: run_id.to_string(),
        case_id: row.try_get(1)?,
        case_title: row.try_get(2)?,
        status: ResultStatus::parse(&status).unwrap_or(ResultStatus::Error),
        duration_ms: duration.map(|d| d.max(0) as u64),
        message: row.try_get(5)?,
        created_at: timestamp(row.try_get(6)?),
    })
}

/// One page of a run's results for the run page: failed first, then errors, skipped,
/// passed (each in report order), optionally one outcome and a title search; with how
/// many match in all.
pub async fn results_for_page(
    db: &Db,
    run_id: &str,
    status: Option<ResultStatus>,
    search: Option<&str>,
    offset: i64,
    limit: i64,
) -> Result<(Vec<TestResult>, i64), AppError> {
    // A LIKE pattern that matches the search text literally, case-insensitively.
    let pattern = search.map(|s| {
        let escaped: String = s
            .to_lowercase()
            .chars()
            .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
            .collect();
        format!("%{escaped}%")
    });
    let filter = "r.run_id = $1 AND ($2 = '' OR r.status = $2) AND ($3 = '' OR LOWER(c.title) LIKE $3 ESCAPE '\\')";
    let (total,): (i64,) =
        sqlx::query_as(&format!("SELECT COUNT(*) FROM results r JOIN cases c ON c.id = r.case_id WHERE {filter}"))
            .bind(run_id)
            .bind(status.map_or("", ResultStatus::as_str))
            .bind(pattern.as_deref().unwrap_or(""))
            .fetch_one(db)
            .await?;
    let rows = sqlx::query(&format!(
        "SELECT {RESULT_COLUMNS} FROM results r JOIN cases c ON c.id = r.case_id WHERE {filter} \
         ORDER BY CASE r.status WHEN 'failed' THEN 0 WHEN 'error' THEN 1 WHEN 'skipped' THEN 2 ELSE 3 END, r.seq \
         LIMIT $4 OFFSET $5"
    ))
    .bind(run_id)
    .bind(status.map_or("", ResultStatus::as_str))
    .bind(pattern.as_deref().unwrap_or(""))
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    let results = rows.iter().map(|row| result_from(row, run_id)).collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok((results, total))
}
