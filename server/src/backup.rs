//! `qahub backup FILE` and `qahub restore FILE`: a consistent copy of the SQLite database
//! taken while the server runs, and putting one back. PostgreSQL has its own tools; for
//! it both commands print them and exit 2.
//!
//! A running server holds a shared `flock` on its SQLite file ([`hold`]); `restore` takes
//! it exclusively, so a restore never replaces a database under a server, and a server
//! never starts on one being restored. (SQLite's own locks are `fcntl` locks, which a
//! `flock` leaves alone.)

use std::{
    fs::{File, TryLockError},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{bail, Context};
use sqlx::{
    sqlite::{SqliteConnectOptions, SqliteConnection},
    ConnectOptions, Connection,
};

use app::db::Backend;

/// What to do instead on PostgreSQL (README, "Backups").
const POSTGRES: &str = "\
this database is PostgreSQL: back it up and restore it with PostgreSQL's own tools, e.g.
  pg_dump --format=custom --file=qahub.dump \"$QAHUB_DATABASE_URL\"
  pg_restore --clean --if-exists --no-owner --dbname=\"$QAHUB_DATABASE_URL\" qahub.dump
then start qahub, which migrates the restored database to its version";

/// The SQLite file a database URL names, or `None` for PostgreSQL.
pub fn sqlite_file(url: &str) -> anyhow::Result<Option<PathBuf>> {
    match Backend::from_url(url).map_err(anyhow::Error::msg)? {
        Backend::Postgres => Ok(None),
        Backend::Sqlite => match app::tokens::server::lookup::sqlite_file(url) {
            Some(file) => Ok(Some(PathBuf::from(file))),
            None => bail!("an in-memory SQLite database is not a file: nothing to back up or restore"),
        },
    }
}

/// A server's claim on its SQLite file, for as long as it is held.
#[derive(Debug)]
pub struct InUse(#[allow(dead_code)] File);

/// Claims `file` for a server, or says that a restore into it is running.
pub fn hold(file: &Path) -> anyhow::Result<InUse> {
    let f = File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    match f.try_lock_shared() {
        Ok(()) => Ok(InUse(f)),
        Err(TryLockError::WouldBlock) => {
            bail!("{}: a restore into this database is running; start the server when it is done", file.display())
        }
        Err(TryLockError::Error(e)) => Err(e).with_context(|| format!("cannot lock {}", file.display())),
    }
}

async fn open_read_only(file: &Path) -> anyhow::Result<SqliteConnection> {
    if !file.is_file() {
        bail!("{}: no such file", file.display());
    }
    SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .busy_timeout(std::time::Duration::from_secs(5))
        .connect()
        .await
        .with_context(|| format!("{}: cannot open it as a SQLite database", file.display()))
}

/// SQLite's own check of every page and index.
async fn integrity(conn: &mut SqliteConnection, file: &Path) -> anyhow::Result<()> {
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut *conn)
        .await
        .with_context(|| format!("{}: not a SQLite database", file.display()))?;
    if check != "ok" {
        bail!("{}: fails SQLite's integrity check: {check}", file.display());
    }
    Ok(())
}

/// `VACUUM INTO` a file next to `dest` that nobody else uses, then returns its path.
async fn copy_beside(conn: &mut SqliteConnection, dest: &Path) -> anyhow::Result<PathBuf> {
    let name = dest.file_name().context("the destination has no file name")?.to_string_lossy();
    let partial = dest.with_file_name(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_file(&partial);
    let into = partial.to_str().context("the destination's path is not UTF-8")?;
    let written = sqlx::query("VACUUM INTO $1").bind(into).execute(&mut *conn).await;
    if let Err(e) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(e).with_context(|| format!("cannot write a copy beside {}", dest.display()));
    }
    // VACUUM INTO does not sync its output: a copy given its name is on disk.
    File::open(&partial).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", partial.display()))?;
    Ok(partial)
}

/// `qahub backup FILE`: a consistent copy, taken in one read transaction (in WAL mode
/// writers go on beside it), checked, and moved into place without overwriting anything.
pub async fn backup(url: &str, to: &Path) -> anyhow::Result<ExitCode> {
    let Some(from) = sqlite_file(url)? else {
        eprintln!("qahub backup: {POSTGRES}");
        return Ok(ExitCode::from(2));
    };
    if to.exists() {
        bail!("{} already exists: a backup never overwrites a file; choose another name", to.display());
    }
    let mut conn = open_read_only(&from).await?;
    let partial = copy_beside(&mut conn, to).await?;
    conn.close().await.ok();
    let checked = async {
        let mut copy = open_read_only(&partial).await?;
        integrity(&mut copy, &partial).await?;
        copy.close().await.ok();
        // A hard link fails if `to` appeared meanwhile: never an overwrite.
        std::fs::hard_link(&partial, to).with_context(|| format!("cannot create {} (it may exist now)", to.display()))
    }
    .await;
    let _ = std::fs::remove_file(&partial);
    checked?;
    let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    println!("backed up {} to {} ({bytes} bytes, integrity ok)", from.display(), to.display());
    Ok(ExitCode::SUCCESS)
}

/// `qahub restore FILE`: checks FILE, refuses while a server uses the target, puts a copy
/// of FILE in its place and migrates it to this version.
pub async fn restore(url: &str, from: &Path) -> anyhow::Result<ExitCode> {
    let Some(target) = sqlite_file(url)? else {
        eprintln!("qahub restore: {POSTGRES}");
        return Ok(ExitCode::from(2));
    };
    let mut source = open_read_only(from).await?;
    integrity(&mut source, from).await?;
    let version: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
        .fetch_one(&mut source)
        .await
        .map_err(|_| anyhow::anyhow!("{}: not a QA Hub database (it has no migrations table)", from.display()))?;
    let latest = app::db::latest_migration(Backend::Sqlite);
    let version = version.unwrap_or(0);
    if version > latest {
        bail!(
            "{}: made by a newer QA Hub (migration {version}; this one knows up to {latest}): restore it with that version",
            from.display()
        );
    }
    // Held until the copy is in place: no server starts on the target meanwhile (a missing
    // target is created empty, so that it can be held too).
    let _lock = match std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&target) {
        Ok(f) => match f.try_lock() {
            Ok(()) => Some(f),
            Err(TryLockError::WouldBlock) => {
                bail!("{}: a server is using this database; stop it, then restore", target.display())
            }
            Err(TryLockError::Error(e)) => return Err(e).context(format!("cannot lock {}", target.display())),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).context(format!("cannot open {}", target.display())),
    };
    let partial = copy_beside(&mut source, &target).await?;
    source.close().await.ok();
    // Migrated before it replaces anything: a copy this version cannot migrate leaves the
    // database as it was.
    let migrated = match partial.to_str() {
        Some(path) => app::db::connect(&format!("sqlite://{path}"), 1).await.map_err(anyhow::Error::msg),
        None => Err(anyhow::anyhow!("the target's path is not UTF-8")),
    };
    match migrated {
        Ok(db) => db.close().await,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context(format!("{}: cannot be migrated to this version; nothing replaced", from.display())));
        }
    }
    // The old database's write-ahead log belongs to it, not to the copy.
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", target.display()));
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e).context(format!("cannot remove {}", side.display()));
            }
        }
    }
    std::fs::rename(&partial, &target).with_context(|| format!("cannot move the copy to {}", target.display()))?;
    let db = app::db::connect(url, 1).await.map_err(anyhow::Error::msg)?;
    db.close().await;
    println!(
        "restored {} into {} (migrated from {version} to {latest}); start the server",
        from.display(),
        target.display()
    );
    Ok(ExitCode::SUCCESS)
}
