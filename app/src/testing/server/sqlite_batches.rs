//! An import's batches on a SQLite file, through rusqlite's cached prepared statements
//! on a writer connection of the import's own (as the warm token lookup reads through
//! rusqlite). sqlx's `Any` driver binds a batch's 3 000 values into one statement and runs
//! it on a worker thread: about 25 µs a result, five times what SQLite itself needs.
//! Here a result is one prepared insert. The statements are those of
//! `store::begin_batch` (with the batch's tally), `store::import_alive`, `store::hold_key`, `store::cases_for_titles` and
//! `store::insert_results`, in SQLite's words; a batch is one `BEGIN IMMEDIATE`
//! transaction, so it takes the write lock at once and holds it only while it writes.
//! PostgreSQL, and an in-memory SQLite, keep the sqlx path.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::store::{Tally, ADD_TALLY};
use crate::{db::row_id, error::AppError, testing::ResultStatus};

/// A writer connection to the database file, for one import.
#[derive(Clone)]
pub struct SqliteBatches(Arc<Mutex<rusqlite::Connection>>);

/// One batch of an import.
pub struct Batch {
    pub tenant_id: String,
    pub project_id: String,
    pub run_id: String,
    pub import_id: String,
    pub idempotency_key: Option<String>,
    pub rows: Vec<reports::Imported>,
    pub now: i64,
}

/// What became of a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Landed {
    Written,
    /// Another import took the Idempotency-Key over: nothing of this batch was written.
    KeyLost,
    /// The import was taken back (it showed no sign of life for too long) or its run was
    /// deleted: nothing of this batch was written.
    TakenBack,
}

fn failed(e: rusqlite::Error) -> AppError {
    tracing::error!(error = %e, "an import batch could not be written");
    AppError::internal()
}

impl SqliteBatches {
    /// A writer on the SQLite file at `path`, with the pool's own settings.
    pub fn open(path: &str) -> Result<Self, AppError> {
        let conn = rusqlite::Connection::open(path).map_err(failed)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
        )
        .map_err(failed)?;
        Ok(SqliteBatches(Arc::new(Mutex::new(conn))))
    }

    /// Writes `batch` in one transaction, off the async threads; answers the batch back
    /// (its rows are the caller's to reuse or drop).
    pub async fn land(&self, batch: Batch) -> Result<Landed, AppError> {
        let conn = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            write(&mut conn, &batch)
        })
        .await
        .map_err(|_| AppError::internal())?
        .map_err(failed)
    }
}

fn write(conn: &mut rusqlite::Connection, b: &Batch) -> Result<Landed, rusqlite::Error> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let t = Tally::of(b.rows.iter().map(|r| (r.status.into(), r.duration_ms)));
    tx.prepare_cached(ADD_TALLY)?.execute(params![
        b.now,
        t.passed,
        t.failed,
        t.skipped,
        t.error,
        t.duration_ms,
        b.run_id
    ])?;
    let seq: i64 = tx
        .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 AS next_seq FROM results WHERE run_id = ?1")?
        .query_row(params![b.run_id], |row| row.get("next_seq"))?;
    let alive = tx
        .prepare_cached("UPDATE imports SET heartbeat_at = ?1 WHERE id = ?2 AND taken_back = 0")?
        .execute(params![b.now, b.import_id])?;
    if alive != 1 {
        return Ok(Landed::TakenBack);
    }
    if let Some(key) = &b.idempotency_key {
        let held = tx
            .prepare_cached(
                "UPDATE import_keys SET run_id = ?1, heartbeat_at = ?2 \
                 WHERE tenant_id = ?3 AND project_id = ?4 AND key = ?5 AND import_id = ?6",
            )?
            .execute(params![b.run_id, b.now, b.tenant_id, b.project_id, key, b.import_id])?;
        if held != 1 {
            return Ok(Landed::KeyLost);
        }
    }
    {
        let mut find = tx.prepare_cached("SELECT id FROM cases WHERE project_id = ?1 AND title = ?2")?;
        let mut add = tx.prepare_cached(
            "INSERT INTO cases (id, project_id, title, description, created_at, updated_at) \
             VALUES (?1, ?2, ?3, '', ?4, ?4)",
        )?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO results (id, run_id, case_id, status, duration_ms, message, created_at, seq, import_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        let mut cases: HashMap<&str, String> = HashMap::new();
        for (i, r) in b.rows.iter().enumerate() {
            let title = r.title.as_str();
            let case_id = match cases.get(title) {
                Some(id) => id.clone(),
                None => {
                    // The transaction holds the write lock: a case missing now stays
                    // missing until it is added here.
                    let id = match find.query_row(params![b.project_id, title], |row| row.get("id")).optional()? {
                        Some(id) => id,
                        None => {
                            let id = row_id();
                            add.execute(params![id, b.project_id, title, b.now])?;
                            id
                        }
                    };
                    cases.insert(title, id.clone());
                    id
                }
            };
            let status: ResultStatus = r.status.into();
            insert.execute(params![
                row_id(),
                b.run_id,
                case_id,
                status.as_str(),
                r.duration_ms.map(|d| d.min(i64::MAX as u64) as i64),
                r.message,
                b.now,
                seq + i as i64,
                b.import_id,
            ])?;
        }
    }
    tx.commit()?;
    Ok(Landed::Written)
}
