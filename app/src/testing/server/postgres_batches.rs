//! An import's batches on PostgreSQL, through native connections the imports share (as
//! the warm token lookup reads PostgreSQL natively). A batch's rows go as arrays,
//! one per column, unpacked by `UNNEST`: a handful of bound values a statement instead of
//! 3 000, which sqlx's `Any` driver converted one by one (about 45 µs a result, ten times
//! what PostgreSQL itself needs). The statements are those of `store::begin_batch` (with the batch's tally),
//! `store::import_alive`, `store::hold_key`, `store::cases_for_titles` and `store::insert_results`.

use std::collections::HashMap;

use sqlx::{postgres::PgPool, Row};

use super::{
    sqlite_batches::{Batch, Landed},
    store::{Tally, ADD_TALLY},
};
use crate::{db::row_id, error::AppError, testing::ResultStatus};

/// Connections to the database that every import of this process shares, at most
/// [`IMPORT_CONNECTIONS`] (a batch takes one for the few milliseconds it writes), beside
/// the app's pool: however many imports run at once, they open no more.
#[derive(Clone)]
pub struct PostgresBatches(PgPool);

/// The connections imports share.
pub const IMPORT_CONNECTIONS: usize = 4;

impl PostgresBatches {
    /// The imports' connections to the PostgreSQL database at `url`, opened as needed.
    pub fn open(url: &str) -> Option<Self> {
        crate::tokens::server::lookup::postgres_pool(url, IMPORT_CONNECTIONS).map(PostgresBatches)
    }

    /// Writes `batch` in one transaction.
    pub async fn land(&self, b: &Batch) -> Result<Landed, AppError> {
        let mut tx = self.0.begin().await?;
        // One round trip sets the batch's transaction up:
        // - its commit need not wait for the disk: the import counts as landed only at its
        //   last transaction, which does wait and flushes every batch before it (a crash
        //   before that leaves an unfinished import, taken back on retry);
        // - every statement has an index to go by: a plan made (and cached) while the
        //   project had a thousand cases scanned all of them once it had a hundred
        //   thousand (1.4 s a batch), and planning each batch afresh cost as much as
        //   writing it; nor a bitmap scan: a generic plan made while the project had 25
        //   cases read all of the project's cases by `cases_page` and hashed them, each
        //   batch (25 ms a batch at 200 000 cases, two thirds of the import's time);
        // - no JIT: with scans priced out, every statement's cost passes `jit_above_cost`,
        //   and compiling it took 100–600 ms a batch, twenty times the work itself.
        sqlx::query(
            "SELECT set_config('synchronous_commit', 'off', true), set_config('enable_seqscan', 'off', true), \
             set_config('enable_bitmapscan', 'off', true), set_config('jit', 'off', true)",
        )
        .execute(&mut *tx)
        .await?;
        let t = Tally::of(b.rows.iter().map(|r| (r.status.into(), r.duration_ms)));
        sqlx::query(ADD_TALLY)
            .bind(b.now)
            .bind(t.passed)
            .bind(t.failed)
            .bind(t.skipped)
            .bind(t.error)
            .bind(t.duration_ms)
            .bind(&b.run_id)
            .execute(&mut *tx)
            .await?;
        let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 AS next_seq FROM results WHERE run_id = $1")
            .bind(&b.run_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("next_seq")?;
        let alive = sqlx::query("UPDATE imports SET heartbeat_at = $1 WHERE id = $2 AND taken_back = 0")
            .bind(b.now)
            .bind(&b.import_id)
            .execute(&mut *tx)
            .await?;
        if alive.rows_affected() != 1 {
            return Ok(Landed::TakenBack);
        }
        if let Some(key) = &b.idempotency_key {
            let held = sqlx::query(
                "UPDATE import_keys SET run_id = $1, heartbeat_at = $2 \
                 WHERE tenant_id = $3 AND project_id = $4 AND key = $5 AND import_id = $6",
            )
            .bind(&b.run_id)
            .bind(b.now)
            .bind(&b.tenant_id)
            .bind(&b.project_id)
            .bind(key)
            .bind(&b.import_id)
            .execute(&mut *tx)
            .await?;
            if held.rows_affected() != 1 {
                return Ok(Landed::KeyLost);
            }
        }

        // The batch's cases: those that exist, then the missing ones made (a title another
        // import made meanwhile is read back).
        let mut titles: Vec<&str> = b.rows.iter().map(|r| r.title.as_str()).collect();
        titles.sort_unstable();
        titles.dedup();
        let mut cases = find_cases(&mut tx, &b.project_id, &titles).await?;
        let missing: Vec<&str> = titles.iter().copied().filter(|t| !cases.contains_key(*t)).collect();
        if !missing.is_empty() {
            let ids: Vec<String> = missing.iter().map(|_| row_id()).collect();
            let made = sqlx::query(
                "INSERT INTO cases (id, project_id, title, description, created_at, updated_at) \
                 SELECT u.id, $1, u.title, '', $2, $2 FROM UNNEST($3::text[], $4::text[]) AS u(id, title) \
                 ON CONFLICT (project_id, title) DO NOTHING RETURNING title, id",
            )
            .bind(&b.project_id)
            .bind(b.now)
            .bind(&ids)
            .bind(&missing)
            .fetch_all(&mut *tx)
            .await?;
            for row in made {
                cases.insert(row.try_get("title")?, row.try_get("id")?);
            }
            let raced: Vec<&str> = missing.into_iter().filter(|t| !cases.contains_key(*t)).collect();
            if !raced.is_empty() {
                cases.extend(find_cases(&mut tx, &b.project_id, &raced).await?);
            }
        }

        let n = b.rows.len();
        let (mut ids, mut case_ids, mut statuses, mut durations, mut messages, mut seqs) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (i, r) in b.rows.iter().enumerate() {
            ids.push(row_id());
            case_ids.push(cases.get(r.title.as_str()).ok_or_else(AppError::internal)?.as_str());
            let status: ResultStatus = r.status.into();
            statuses.push(status.as_str());
            durations.push(r.duration_ms.map(|d| d.min(i64::MAX as u64) as i64));
            messages.push(r.message.as_deref());
            seqs.push(seq + i as i64);
        }
        sqlx::query(
            "INSERT INTO results (id, run_id, case_id, status, duration_ms, message, created_at, seq, import_id) \
             SELECT u.id, $1, u.case_id, u.status, u.duration_ms, u.message, $2, u.seq, $3 \
             FROM UNNEST($4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::bigint[]) \
             AS u(id, case_id, status, duration_ms, message, seq)",
        )
        .bind(&b.run_id)
        .bind(b.now)
        .bind(&b.import_id)
        .bind(&ids)
        .bind(&case_ids)
        .bind(&statuses)
        .bind(&durations)
        .bind(&messages)
        .bind(&seqs)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Landed::Written)
    }
}

async fn find_cases(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    project_id: &str,
    titles: &[&str],
) -> Result<HashMap<String, String>, AppError> {
    let rows = sqlx::query(
        // Each title looked up in the `(project_id, title)` index, whatever the statistics say.
        "SELECT title, id FROM cases WHERE project_id = $1 AND title = ANY($2::text[])",
    )
    .bind(project_id)
    .bind(titles)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(|row| Ok((row.try_get("title")?, row.try_get("id")?))).collect()
}
