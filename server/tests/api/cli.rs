//! The `qahub` binary itself: operator commands, start-up errors, graceful shutdown.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

const QAHUB: &str = env!("CARGO_BIN_EXE_qahub");

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qahub-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn qahub(dir: &PathBuf, args: &[&str]) -> Output {
    Command::new(QAHUB)
        .args(args)
        .current_dir(dir)
        .env("QAHUB_BCRYPT_COST", "4")
        .env_remove("QAHUB_DATABASE_URL")
        .env_remove("QAHUB_LISTEN")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// The last line a failing command printed, which must be the one-line reason.
fn error_line(out: &Output) -> String {
    stderr(out).lines().last().unwrap_or_default().to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn operator_commands_work_and_fail_clearly() {
    let dir = temp_dir();
    let boot =
        ["admin", "bootstrap", "--tenant", "Acme", "--email", "ops@example.com", "--password", "a long password"];
    let out = qahub(&dir, &boot);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.join("qahub.db").exists(), "SQLite file qahub.db in the working directory");

    let out = qahub(&dir, &boot);
    assert!(!out.status.success());
    assert_eq!(error_line(&out), "error: A workspace named \"Acme\" already exists.");

    let add = [
        "admin",
        "add-user",
        "--tenant",
        "Acme",
        "--email",
        "m@example.com",
        "--password",
        "another password",
        "--role",
        "member",
    ];
    assert!(qahub(&dir, &add).status.success());
    assert!(qahub(&dir, &["user", "suspend", "m@example.com"]).status.success());
    assert!(qahub(&dir, &["user", "activate", "m@example.com"]).status.success());
    assert!(qahub(&dir, &["tenant", "suspend", "Acme"]).status.success());
    assert!(qahub(&dir, &["tenant", "activate", "Acme"]).status.success());

    let out = qahub(&dir, &["tenant", "suspend", "Nope"]);
    assert!(!out.status.success());
    assert_eq!(error_line(&out), "error: Workspace \"Nope\" not found.");
    let out = qahub(&dir, &["admin", "bootstrap", "--tenant", "X", "--email", "bad", "--password", "a long password"]);
    assert!(!out.status.success());
    assert!(error_line(&out).starts_with("error: Enter a valid email"), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_start_up_conditions_are_one_line_errors() {
    let dir = temp_dir();
    let out = qahub(&dir, &["serve", "--database-url", "mysql://localhost/x"]);
    assert!(!out.status.success());
    assert!(error_line(&out).starts_with("error: unsupported database URL"), "{}", stderr(&out));
    assert!(!stderr(&out).contains("panicked"));

    let out = qahub(&dir, &["serve", "--database-url", "sqlite:///nonexistent-dir/sub/qahub.db?mode=rwc"]);
    assert!(!out.status.success());
    assert!(error_line(&out).starts_with("error: cannot open database"), "{}", stderr(&out));

    let out = qahub(&dir, &["serve", "--database-url", "postgres://nobody:secret@127.0.0.1:1/none"]);
    assert!(!out.status.success());
    let line = error_line(&out);
    assert!(line.starts_with("error: cannot open database") && !line.contains("secret"), "{line}");

    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = qahub(&dir, &["serve", "--listen", &addr]);
    assert!(!out.status.success());
    assert!(error_line(&out).starts_with(&format!("error: cannot listen on {addr}")), "{}", stderr(&out));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn serve_stops_gracefully_on_sigterm() {
    let dir = temp_dir();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut child = Command::new(QAHUB)
        .args(["serve", "--listen", &addr])
        .current_dir(&dir)
        .env("QAHUB_BCRYPT_COST", "4")
        .env_remove("QAHUB_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut up = false;
    while started.elapsed() < Duration::from_secs(30) {
        if std::net::TcpStream::connect(&addr).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(up, "server did not start");
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    std::fs::remove_dir_all(&dir).ok();
}
