//! The database handle every store uses: one `sqlx::AnyPool` over SQLite (the embedded
//! default) or PostgreSQL, picked from the URL. Queries use `$n` placeholders, which both accept.

use std::{str::FromStr, time::Duration};

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
pub use sqlx::AnyPool as Db;

use crate::error::AppError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// Tells the backend from a URL, or says in one line what is wrong with it.
    pub fn from_url(url: &str) -> Result<Self, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else {
            Err(format!("unsupported database URL {:?}: expected sqlite://FILE or postgres://…", redact_url(url)))
        }
    }
}

/// The backend a pool talks to.
pub fn backend_of(db: &Db) -> Backend {
    if db.connect_options().database_url.scheme().starts_with("postgres") {
        Backend::Postgres
    } else {
        Backend::Sqlite
    }
}

/// A URL fit for an error message: any password replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Opens the pool and runs the migrations of its backend.
pub async fn connect(url: &str, max_connections: u32) -> Result<Db, String> {
    let backend = Backend::from_url(url)?;
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(url).map_err(|e| format!("bad database URL {}: {e}", redact_url(url)))?;
    let pool = AnyPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        // A ping before every acquire is a round trip per query (a thread hop on SQLite);
        // a connection that broke is dropped on its first error instead.
        .test_before_acquire(false)
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers run beside the one writer; the busy timeout makes
                    // writers queue instead of failing with "database is locked".
                    use sqlx::Executor;
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;",
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .connect_with(options)
        .await
        .map_err(|e| format!("cannot open database {}: {e}", redact_url(url)))?;
    migrator(backend).run(&pool).await.map_err(|e| format!("cannot migrate database {}: {e}", redact_url(url)))?;
    Ok(pool)
}

fn migrator(backend: Backend) -> sqlx::migrate::Migrator {
    match backend {
        Backend::Sqlite => sqlx::migrate!("../migrations/sqlite"),
        Backend::Postgres => sqlx::migrate!("../migrations/postgres"),
    }
}

/// The newest migration this version knows (`migrations/`): a database past it was made
/// by a newer version.
pub fn latest_migration(backend: Backend) -> i64 {
    migrator(backend).iter().map(|m| m.version).max().unwrap_or(0)
}

/// Writers in flight in this process besides imports: requests that may write (any method
/// but GET, HEAD and OPTIONS) and writes done off a request's path. SQLite has one writer
/// at a time; an import on it lands in batches and, between two, waits while any of these
/// is in flight, so they take the lock next instead of polling for it behind the import.
#[derive(Debug, Default)]
pub struct Writers {
    in_flight: std::sync::atomic::AtomicUsize,
    none_left: tokio::sync::Notify,
}

/// One writer in flight, until dropped.
pub struct Writing(std::sync::Arc<Writers>);

impl Drop for Writing {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            self.0.none_left.notify_waiters();
        }
    }
}

impl Writers {
    /// Counts a writer in until the answer is dropped.
    pub fn enter(self: &std::sync::Arc<Self>) -> Writing {
        self.in_flight.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Writing(self.clone())
    }

    /// How many writers are in flight now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until no writer is in flight, or `at_most` has passed.
    pub async fn until_none(&self, at_most: Duration) {
        let _ = tokio::time::timeout(at_most, async {
            loop {
                let none_left = self.none_left.notified();
                tokio::pin!(none_left);
                none_left.as_mut().enable();
                if self.in_flight() == 0 {
                    return;
                }
                none_left.await;
            }
        })
        .await;
    }
}

/// Seconds since the Unix epoch: every timestamp column holds this.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub fn timestamp(secs: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An id for rows written in bulk (cases, runs, results): a UUIDv7, whose leading bits
/// are the time, so new rows land at the end of the primary-key index instead of on a
/// random page of it. Random ids made every batch of an import rewrite hundreds of index
/// pages once the table was large, and each batch got slower as the table grew.
pub fn row_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Turns a unique-constraint violation into the given error; anything else is internal.
pub fn on_unique(err: sqlx::Error, conflict: impl FnOnce() -> AppError) -> AppError {
    match &err {
        sqlx::Error::Database(db_err) if db_err.is_unique_violation() => conflict(),
        _ => err.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_the_scheme() {
        assert_eq!(Backend::from_url("sqlite://qahub.db?mode=rwc"), Ok(Backend::Sqlite));
        assert_eq!(Backend::from_url("postgres://u@h/db"), Ok(Backend::Postgres));
        assert!(Backend::from_url("mysql://x").unwrap_err().contains("unsupported"));
    }

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://a.db"), "sqlite://a.db");
    }
}
