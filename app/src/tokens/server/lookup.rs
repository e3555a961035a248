//! Coalesced token lookups. Every authenticated request reads its token's row (status,
//! expiry, tenant, owner, allowlist, host claim) from the database, so that a revoke is
//! exact on every instance. Under load those reads share queries: lookups that arrive
//! while earlier queries are running wait for the next query, which asks for all of them
//! at once (`store::find_many_for_auth`). Each answer still comes from a query that
//! *started after the request arrived*, so nothing is answered from memory and a change
//! that has committed is seen by the next request. Under light load a lookup finds a free
//! slot and runs alone, with no added wait.
//!
//! On SQLite the database is a file on this machine, so the read needs no queue: a few
//! read-only connections of its own run the same query in place, on the calling thread
//! (microseconds, no hop to sqlx's connection thread). Each read is its own transaction
//! and sees every commit made before it, by this process or by the CLI.
//!
//! A warm SQLite token is answered from an exact copy of its row: `PRAGMA data_version`
//! on a connection held for that alone changes whenever any other connection commits —
//! this process's sqlx pool as well as another process such as the CLI — so each request
//! asks it first (a microsecond), and a copy taken under an older version is never used.

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use tokio::sync::{mpsc, oneshot, Semaphore};

use super::store::{self, AuthKey, AuthRow};
use crate::{db::Db, error::AppError};

/// Pairs asked about in one query at most (two bound parameters each).
const MAX_BATCH: usize = 64;
/// Lookups waiting for a query; past this, callers wait to enqueue.
const QUEUE: usize = 4096;

type Answer = Result<Option<AuthRow>, AppError>;

pub struct Pending {
    key: AuthKey,
    reply: oneshot::Sender<Answer>,
}

/// The handle `authenticate` uses; cheap to clone.
#[derive(Clone)]
pub enum Lookups {
    /// Queries through the pool, coalesced (PostgreSQL, in-memory SQLite).
    Shared(mpsc::Sender<Pending>),
    /// In-process reads of a SQLite file.
    Local(Arc<LocalReaders>),
}

impl Lookups {
    /// Picks the reader for the pool's database. The coalescer runs on the current Tokio
    /// runtime with at most `concurrent` queries at once (a share of the pool).
    pub fn start(db: Db, concurrent: usize) -> Self {
        let url = db.connect_options().database_url.to_string();
        if let Some(readers) = sqlite_file(&url).and_then(|path| LocalReaders::open(&path)) {
            return Lookups::Local(Arc::new(readers));
        }
        let reader = match postgres_pool(&url, concurrent) {
            Some(pool) => BatchReader::Postgres(pool),
            None => BatchReader::Any(db),
        };
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(reader, receiver, Arc::new(Semaphore::new(concurrent.max(1)))));
        Lookups::Shared(queue)
    }

    /// Lookups answered from an in-memory copy of the row (SQLite only).
    pub fn copies_served(&self) -> u64 {
        match self {
            Lookups::Local(readers) => readers.copies.served.load(Ordering::Relaxed),
            Lookups::Shared(_) => 0,
        }
    }

    /// The row of the token with `prefix`, and which tenant claims `host`, as the
    /// database holds it now.
    pub async fn find(&self, prefix: &str, host: &str) -> Answer {
        match self {
            Lookups::Local(readers) => readers.find(prefix, host),
            Lookups::Shared(queue) => {
                let (reply, answer) = oneshot::channel();
                let pending = Pending { key: (prefix.to_string(), host.to_string()), reply };
                queue.send(pending).await.map_err(|_| AppError::internal())?;
                answer.await.map_err(|_| AppError::internal())?
            }
        }
    }
}

/// How the coalescer runs a batch: on PostgreSQL through a small pool of its own on the
/// native driver (one prepared statement for every batch size, no `Any` conversion).
#[derive(Clone)]
enum BatchReader {
    Any(Db),
    Postgres(sqlx::PgPool),
}

pub(crate) fn postgres_pool(url: &str, connections: usize) -> Option<sqlx::PgPool> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return None;
    }
    let options = url.parse::<sqlx::postgres::PgConnectOptions>().ok()?;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(u32::try_from(connections).unwrap_or(1).max(1))
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
        .connect_lazy_with(options);
    Some(pool)
}

impl BatchReader {
    async fn find_many(&self, keys: &[AuthKey]) -> Result<Vec<(AuthKey, AuthRow)>, AppError> {
        match self {
            BatchReader::Any(db) => store::find_many_for_auth(db, keys).await,
            BatchReader::Postgres(pool) => {
                let sql = store::auth_sql(keys.len());
                let mut query = sqlx::query(&sql);
                for (prefix, host) in keys {
                    query = query.bind(prefix).bind(host);
                }
                let rows = query.fetch_all(pool).await?;
                Ok(rows.iter().map(store::auth_row).collect::<Result<_, _>>()?)
            }
        }
    }
}

/// The file of a `sqlite:` URL, unless the database lives in memory.
pub fn sqlite_file(url: &str) -> Option<String> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
    // As sqlx reads it: `/var/lib/qa%20hub/q.db` is the file `/var/lib/qa hub/q.db`.
    (!memory).then(|| percent_encoding::percent_decode_str(path).decode_utf8_lossy().into_owned())
}

/// Read-only connections to the SQLite file, one per core; a caller takes a free one.
pub struct LocalReaders {
    connections: Vec<Mutex<rusqlite::Connection>>,
    next: AtomicUsize,
    sql: String,
    copies: Copies,
}

/// Rows exactly as the database held them at `version`; emptied when it moves on.
struct Copies {
    /// Asks only `PRAGMA data_version`: its answer is per connection, so always this one.
    watch: Mutex<rusqlite::Connection>,
    rows: Mutex<Snapshot>,
    served: AtomicU64,
}

#[derive(Default)]
struct Snapshot {
    version: i64,
    rows: HashMap<AuthKey, AuthRow>,
}

/// Rows kept at most; past it the copy starts over (a workspace rarely has this many
/// tokens in use at once, and a miss only costs the read every request paid before).
const MAX_COPIES: usize = 10_000;

impl Copies {
    /// The database's version as the watch connection sees it now: any commit by any
    /// other connection since its last answer makes it differ.
    fn version(&self) -> Result<i64, rusqlite::Error> {
        let conn = self.watch.lock().map_err(|_| rusqlite::Error::InvalidQuery)?;
        let mut statement = conn.prepare_cached("PRAGMA data_version")?;
        statement.query_row([], |row| row.get("data_version"))
    }

    fn get(&self, version: i64, prefix: &str, host: &str) -> Option<AuthRow> {
        let mut snapshot = self.rows.lock().ok()?;
        // The watch connection's versions only grow: a request that asked before another
        // committed-and-asked holds an older one, and must neither use nor reset the copy.
        if version != snapshot.version {
            if version > snapshot.version {
                snapshot.rows.clear();
                snapshot.version = version;
            }
            return None;
        }
        let row = snapshot.rows.get(&(prefix.to_string(), host.to_string())).cloned()?;
        self.served.fetch_add(1, Ordering::Relaxed);
        Some(row)
    }

    /// Keeps `row`, read after `version` was asked, unless the database moved on since.
    fn keep(&self, version: i64, key: AuthKey, row: AuthRow) {
        let Ok(mut snapshot) = self.rows.lock() else { return };
        if snapshot.version != version {
            return;
        }
        if snapshot.rows.len() >= MAX_COPIES {
            snapshot.rows.clear();
        }
        snapshot.rows.insert(key, row);
    }
}

impl LocalReaders {
    fn open(path: &str) -> Option<Self> {
        use rusqlite::OpenFlags;
        let count = std::thread::available_parallelism().map_or(2, |n| n.get());
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = || -> Result<rusqlite::Connection, rusqlite::Error> {
            let conn = rusqlite::Connection::open_with_flags(path, flags)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.set_prepared_statement_cache_capacity(4);
            Ok(conn)
        };
        let opened = (0..count).map(|_| open().map(Mutex::new)).collect::<Result<Vec<_>, _>>().and_then(|c| {
            let copies = Copies { watch: Mutex::new(open()?), rows: Mutex::default(), served: AtomicU64::new(0) };
            Ok((c, copies))
        });
        match opened {
            Ok((connections, copies)) => {
                Some(Self { connections, next: AtomicUsize::new(0), sql: store::auth_sql_sqlite_one(), copies })
            }
            Err(e) => {
                tracing::warn!(error = %e, "no in-process SQLite reader; token lookups go through the pool");
                None
            }
        }
    }

    fn find(&self, prefix: &str, host: &str) -> Answer {
        // The version is asked before the row is read: a commit in between leaves a copy
        // newer than its version, which the next request throws away (never the reverse).
        let version = self.copies.version().map_err(|e| {
            tracing::error!(error = %e, "cannot ask SQLite's data_version");
            AppError::internal()
        })?;
        if let Some(row) = self.copies.get(version, prefix, host) {
            return Ok(Some(row));
        }
        let row = self.read(prefix, host)?;
        if let Some(row) = &row {
            self.copies.keep(version, (prefix.to_string(), host.to_string()), row.clone());
        }
        Ok(row)
    }

    fn read(&self, prefix: &str, host: &str) -> Answer {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.connections.len();
        let guard = (0..n)
            .find_map(|i| self.connections[(start + i) % n].try_lock().ok())
            .map_or_else(|| self.connections[start % n].lock(), Ok)
            .map_err(|_| AppError::internal())?;
        let read = || -> Result<Option<AuthRow>, rusqlite::Error> {
            let mut statement = guard.prepare_cached(&self.sql)?;
            let mut rows = statement.query([prefix, host])?;
            match rows.next()? {
                Some(row) => store::auth_row(row)
                    .map(|(_, auth)| Some(auth))
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e))),
                None => Ok(None),
            }
        };
        read().map_err(|e| {
            tracing::error!(error = %e, "token lookup failed");
            AppError::internal()
        })
    }
}

async fn run(reader: BatchReader, mut receiver: mpsc::Receiver<Pending>, slots: Arc<Semaphore>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // Wait for a free slot first: while every slot is busy, arrivals gather in the
        // queue and the next query takes them all.
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return; // every handle is gone: the server is stopping
        }
        let pending = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let reader = reader.clone();
        tokio::spawn(async move {
            answer(&reader, pending).await;
            drop(slot);
        });
    }
}

async fn answer(reader: &BatchReader, pending: Vec<Pending>) {
    metrics::histogram!("qahub_token_lookup_batch_size").record(pending.len() as f64);
    let mut waiting: HashMap<AuthKey, Vec<oneshot::Sender<Answer>>> = HashMap::with_capacity(pending.len());
    for p in pending {
        waiting.entry(p.key).or_default().push(p.reply);
    }
    let keys: Vec<AuthKey> = waiting.keys().cloned().collect();
    match reader.find_many(&keys).await {
        Ok(rows) => {
            let mut found: HashMap<AuthKey, AuthRow> = rows.into_iter().collect();
            for (key, replies) in waiting {
                let row = found.remove(&key);
                for reply in replies {
                    let _ = reply.send(Ok(row.clone()));
                }
            }
        }
        Err(err) => {
            for reply in waiting.into_values().flatten() {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(sqlite_file("sqlite://data/qahub.db?mode=rwc").as_deref(), Some("data/qahub.db"));
        assert_eq!(sqlite_file("sqlite:qahub.db").as_deref(), Some("qahub.db"));
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory&cache=shared"), None);
        assert_eq!(sqlite_file("postgres://localhost/test"), None);
        assert_eq!(
            sqlite_file("sqlite:///var/lib/qa%20hub/q%C3%A9.db?mode=rwc").as_deref(),
            Some("/var/lib/qa hub/qé.db")
        );
    }

    async fn seeded() -> (tempdir::Dir, Db) {
        let dir = tempdir::Dir::new();
        let db = crate::db::connect(&format!("sqlite://{}?mode=rwc", dir.path("t.db")), 4).await.unwrap();
        for sql in [
            "INSERT INTO tenants (id, name, created_at) VALUES ('tn1', 'One', 0)",
            "INSERT INTO tenants (id, name, created_at) VALUES ('tn2', 'Two', 0)",
            "INSERT INTO tenant_hosts (host, tenant_id, created_at) VALUES ('two.example', 'tn2', 0)",
        ] {
            sqlx::query(sql).execute(&db).await.unwrap();
        }
        for i in 0..20 {
            sqlx::query(
                "INSERT INTO api_tokens (id, tenant_id, prefix, secret_hash, name, scopes, all_projects, created_at, \
                 expiry_policy, status) VALUES ($1, 'tn1', $2, 'h', $3, 'read', 1, 0, 'never', 'active')",
            )
            .bind(format!("id{i}"))
            .bind(format!("pre{i:05}"))
            .bind(format!("token {i}"))
            .execute(&db)
            .await
            .unwrap();
        }
        (dir, db)
    }

    /// Many concurrent lookups, some for the same token, some unknown, through both the
    /// in-process reader and the coalescer: each gets its own row, and a change that has
    /// committed is seen by the next lookup.
    async fn check(lookups: Lookups, db: &Db) {
        let tasks: Vec<_> = (0..200)
            .map(|n| {
                let lookups = lookups.clone();
                tokio::spawn(async move {
                    let i = n % 25; // 20..25 do not exist
                    let host = if n % 2 == 0 { "two.example" } else { "" };
                    (i, host, lookups.find(&format!("pre{i:05}"), host).await.unwrap())
                })
            })
            .collect();
        for task in tasks {
            let (i, host, row) = task.await.unwrap();
            match row {
                Some(row) => {
                    assert!(i < 20);
                    assert_eq!(row.token.id, format!("id{i}"));
                    assert_eq!(row.token.name, format!("token {i}"));
                    assert_eq!(row.tenant_name, "One");
                    assert_eq!(row.host_owner.as_deref(), (host == "two.example").then_some("tn2"));
                }
                None => assert!(i >= 20, "token {i} not found"),
            }
        }
        sqlx::query("UPDATE api_tokens SET status = 'revoked' WHERE id = 'id3'").execute(db).await.unwrap();
        assert_eq!(
            lookups.find("pre00003", "").await.unwrap().unwrap().token.status,
            crate::tokens::TokenState::Revoked
        );
    }

    #[tokio::test]
    async fn the_in_process_reader_answers_each_lookup() {
        let (_dir, db) = seeded().await;
        let lookups = Lookups::start(db.clone(), 2);
        assert!(matches!(lookups, Lookups::Local(_)), "a SQLite file is read in-process");
        check(lookups, &db).await;
    }

    /// The copy serves repeated lookups, and any commit — through the pool (this
    /// process) or through a connection of its own (another process, like the CLI) —
    /// is seen by the very next lookup.
    #[tokio::test]
    async fn copies_never_outlive_a_commit() {
        let (dir, db) = seeded().await;
        let lookups = Lookups::start(db.clone(), 2);
        let status =
            |lookups: Lookups| async move { lookups.find("pre00004", "").await.unwrap().unwrap().token.status };
        assert_eq!(status(lookups.clone()).await, crate::tokens::TokenState::Active);
        for _ in 0..5 {
            assert_eq!(status(lookups.clone()).await, crate::tokens::TokenState::Active);
        }
        assert_eq!(lookups.copies_served(), 5, "warm lookups come from the copy");

        sqlx::query("UPDATE api_tokens SET status = 'disabled' WHERE id = 'id4'").execute(&db).await.unwrap();
        assert_eq!(status(lookups.clone()).await, crate::tokens::TokenState::Disabled, "a write of this process");

        let other = rusqlite::Connection::open(dir.path("t.db")).unwrap();
        other.busy_timeout(Duration::from_secs(5)).unwrap();
        for round in 0..20 {
            // Warm the copy, then change the row from the other connection.
            assert_eq!(status(lookups.clone()).await, crate::tokens::TokenState::Disabled, "round {round}");
            other.execute("UPDATE api_tokens SET status = 'revoked' WHERE id = 'id4'", []).unwrap();
            assert_eq!(status(lookups.clone()).await, crate::tokens::TokenState::Revoked, "round {round}");
            other.execute("UPDATE api_tokens SET status = 'disabled' WHERE id = 'id4'", []).unwrap();
        }
        // A write to any other table also starts the copy over: exact, not clever.
        let served = lookups.copies_served();
        other.execute("UPDATE tenants SET name = 'Uno' WHERE id = 'tn1'", []).unwrap();
        assert_eq!(lookups.find("pre00004", "").await.unwrap().unwrap().tenant_name, "Uno");
        assert_eq!(lookups.copies_served(), served);
    }

    #[tokio::test]
    async fn coalesced_lookups_answer_each_waiter() {
        let (_dir, db) = seeded().await;
        let (queue, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(run(BatchReader::Any(db.clone()), receiver, Arc::new(Semaphore::new(1))));
        check(Lookups::Shared(queue), &db).await;
    }

    /// A directory removed on drop (no extra dependency for one test).
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let path = std::env::temp_dir().join(format!("qahub-lookup-{}", uuid::Uuid::new_v4()));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
            pub fn path(&self, name: &str) -> String {
                self.0.join(name).display().to_string()
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
