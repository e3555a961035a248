//! People's sessions live in the same database as everything else, so any instance
//! can serve any request. The store's type depends on the backend; this enum hides that.

use async_trait::async_trait;
use tower_sessions::{
    cookie::SameSite,
    session::{Id, Record},
    session_store::{self, ExpiredDeletion},
    Expiry, SessionManagerLayer, SessionStore,
};
use tower_sessions_sqlx_store::{sqlx, PostgresStore, SqliteStore};

use app::db::Backend;

#[derive(Clone, Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Store {
    pub async fn connect(url: &str) -> Result<Self, String> {
        let err = |e: sqlx::Error| format!("cannot open the session store: {e}");
        let store = match Backend::from_url(url)? {
            Backend::Sqlite => {
                let pool = sqlx::sqlite::SqlitePoolOptions::new().max_connections(4).connect(url).await.map_err(err)?;
                let store = SqliteStore::new(pool);
                store.migrate().await.map_err(err)?;
                Store::Sqlite(store)
            }
            Backend::Postgres => {
                let pool = sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(url).await.map_err(err)?;
                let store = PostgresStore::new(pool);
                store.migrate().await.map_err(err)?;
                Store::Postgres(store)
            }
        };
        Ok(store)
    }

    /// Removes expired sessions at start and then once an hour, for as long as the server
    /// runs (the store's own loop waits an hour before its first pass, so a server
    /// restarted more often would never clean up without the first).
    pub fn spawn_cleanup(&self) {
        let store = self.clone();
        tokio::spawn(async move {
            let every = tokio::time::Duration::from_secs(3600);
            let first = match &store {
                Store::Sqlite(s) => s.delete_expired().await,
                Store::Postgres(s) => s.delete_expired().await,
            };
            if let Err(e) = first {
                tracing::warn!(error = %e, "could not delete expired sessions; will retry in an hour");
            }
            let result = match store {
                Store::Sqlite(s) => s.continuously_delete_expired(every).await,
                Store::Postgres(s) => s.continuously_delete_expired(every).await,
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, "session cleanup stopped");
            }
        });
    }
}

#[async_trait]
impl SessionStore for Store {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            Store::Sqlite(s) => s.create(record).await,
            Store::Postgres(s) => s.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            Store::Sqlite(s) => s.save(record).await,
            Store::Postgres(s) => s.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            Store::Sqlite(s) => s.load(id).await,
            Store::Postgres(s) => s.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            Store::Sqlite(s) => s.delete(id).await,
            Store::Postgres(s) => s.delete(id).await,
        }
    }
}

pub const COOKIE_NAME: &str = "qahub_session";

/// HttpOnly, SameSite=Strict, Secure when served over HTTPS; a week of inactivity ends it.
pub fn layer(store: Store, secure: bool) -> SessionManagerLayer<Store> {
    SessionManagerLayer::new(store)
        .with_name(COOKIE_NAME)
        .with_http_only(true)
        .with_same_site(SameSite::Strict)
        .with_secure(secure)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(7)))
}
