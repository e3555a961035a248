//! The real `qahub` binary as a separate process: operator commands, and servers that a
//! test can start, SIGKILL and restart on one database.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Runs an operator command against `db` and returns what it printed.
pub fn cli(db: &str, args: &[&str]) -> String {
    cli_logged(db, args, None).0
}

/// Runs an operator command against `db` (with `QAHUB_LOG=log` when given): what it
/// printed, and what it logged.
pub fn cli_logged(db: &str, args: &[&str], log: Option<&str>) -> (String, Vec<u8>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_qahub"));
    command.args(args).env("QAHUB_DATABASE_URL", db).env("QAHUB_BCRYPT_COST", "4");
    if let Some(log) = log {
        command.env("QAHUB_LOG", log);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "qahub {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    (String::from_utf8(out.stdout).unwrap().trim().to_string(), out.stderr)
}

/// A workspace with an owner, and an admin token for it.
pub fn admin_token(db: &str) -> String {
    cli(
        db,
        &["admin", "bootstrap", "--tenant", "Proc", "--email", "proc@example.com", "--password", "proc password 1"],
    );
    cli(
        db,
        &["token", "create", "--tenant", "Proc", "--email", "proc@example.com", "--name", "admin", "--scopes", "admin"],
    )
}

/// A running `qahub serve`; killed (SIGKILL) when dropped.
pub struct Server {
    child: Child,
    pub base: String,
}

impl Server {
    /// A server logging warnings to the test's stderr, with request limits lifted.
    pub async fn start(db: &str) -> Server {
        Self::spawn(db, None).await
    }

    /// The same with debug logging into `dir/server.log` (and stdout into `dir/stdout.log`).
    pub async fn start_logging(db: &str, dir: &std::path::Path) -> Server {
        Self::spawn(db, Some(dir)).await
    }

    async fn spawn(db: &str, log_dir: Option<&std::path::Path>) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let file = |name: &str| Stdio::from(std::fs::File::create(log_dir.unwrap().join(name)).unwrap());
        let child = Command::new(env!("CARGO_BIN_EXE_qahub"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("QAHUB_DATABASE_URL", db)
            .env("QAHUB_BCRYPT_COST", "4")
            // The API is under test here, not the pages: no built site needed.
            .env("QAHUB_SKIP_SITE_CHECK", "true")
            .env("QAHUB_TOKEN_RATE_LIMIT", "1000000")
            .env("QAHUB_AUTH_ATTEMPTS_PER_IP", "1000000")
            .env("QAHUB_AUTH_ATTEMPTS_PER_PREFIX", "1000000")
            .env("QAHUB_IMPORT_ABANDONED_AFTER", "2")
            .env("QAHUB_LOG", if log_dir.is_some() { "debug" } else { "warn" })
            .stdout(if log_dir.is_some() { file("stdout.log") } else { Stdio::null() })
            .stderr(if log_dir.is_some() { file("server.log") } else { Stdio::inherit() })
            .spawn()
            .unwrap();
        let server = Server { child, base: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if client.get(server.url("/readyz")).send().await.is_ok_and(|r| r.status().is_success()) {
                return server;
            }
            assert!(Instant::now() < deadline, "qahub serve did not become ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /api/v1{path}` with `token`, as JSON.
    pub async fn get_json(&self, client: &reqwest::Client, path: &str, token: &str) -> serde_json::Value {
        let res = client.get(self.url(&format!("/api/v1{path}"))).bearer_auth(token).send().await.unwrap();
        res.json().await.unwrap()
    }

    /// The process's resident memory now, and the most it has held since it started or
    /// since [`Server::reset_peak`], in bytes (`VmRSS`, `VmHWM`).
    pub fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib = |field: &str| -> u64 {
            let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
            line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
        };
        (kib("VmRSS:"), kib("VmHWM:"))
    }

    /// Starts the peak (`VmHWM`) afresh from the memory held now.
    pub fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").unwrap();
    }

    /// SIGTERM, then wait for the graceful stop.
    pub fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }

    /// SIGKILL: no shutdown, no flush, whatever was in flight is cut.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs an operator command against `db` and returns how it ended, whatever that was.
pub fn cli_output(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_qahub")).args(args).env("QAHUB_DATABASE_URL", db).output().unwrap()
}
