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
        // These tests are about the database and the port; the site check has its own.
        .env("QAHUB_SKIP_SITE_CHECK", "true")
        .env_remove("LEPTOS_SITE_ROOT")
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

/// The names this binary's pages reference under `/pkg`, read off a page it serves (with
/// the check skipped) as a browser would find them.
fn referenced_names(dir: &std::path::Path) -> Vec<String> {
    use std::io::{Read, Write};
    let port = free_port();
    let mut child = Command::new(QAHUB)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir)
        .env("QAHUB_BCRYPT_COST", "4")
        .env("QAHUB_SKIP_SITE_CHECK", "true")
        .env("QAHUB_DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.join("names.db").display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut html = String::new();
    while started.elapsed() < Duration::from_secs(30) && html.is_empty() {
        if let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            conn.write_all(b"GET /login HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
            conn.read_to_string(&mut html).unwrap();
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let mut names: Vec<String> = html
        .split("/pkg/")
        .skip(1)
        .filter_map(|rest| rest.split(['"', '\'', ' ', ')']).next())
        .filter(|name| [".js", ".wasm", ".css"].iter().any(|ext| name.ends_with(ext)))
        .map(String::from)
        .collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 3, "a script, a wasm and a stylesheet in: {html}");
    names
}

#[test]
fn serve_refuses_a_site_the_pages_would_break_on() {
    let dir = temp_dir();
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("pkg")).unwrap();
    let serve = |port: u16| {
        Command::new(QAHUB)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .current_dir(&dir)
            .env("QAHUB_BCRYPT_COST", "4")
            .env("LEPTOS_SITE_ROOT", &site)
            .env_remove("QAHUB_SKIP_SITE_CHECK")
            .env_remove("QAHUB_DATABASE_URL")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // An empty folder: no server, one line naming every missing file and the folder.
    let out = serve(free_port()).wait_with_output().unwrap();
    assert!(!out.status.success());
    let line = error_line(&out);
    assert!(line.starts_with("error: the pages would load without their files:"), "{}", stderr(&out));
    let names = referenced_names(&dir);
    for name in &names {
        assert!(line.contains(name.as_str()), "{name} not named in: {line}");
    }
    assert!(line.contains(&site.join("pkg").display().to_string()), "{line}");
    assert!(!dir.join("qahub.db").exists(), "a refused start opened the database");

    // Two of the three: still refused, naming the one missing.
    for name in &names[..2] {
        std::fs::write(site.join("pkg").join(name), "x").unwrap();
    }
    let out = serve(free_port()).wait_with_output().unwrap();
    let line = error_line(&out);
    assert!(!out.status.success() && line.contains(&names[2]) && !line.contains(&names[0]), "{line}");

    // All three: it serves.
    std::fs::write(site.join("pkg").join(&names[2]), "x").unwrap();
    let port = free_port();
    let mut child = serve(port);
    let started = Instant::now();
    let mut up = false;
    while started.elapsed() < Duration::from_secs(30) && !up {
        up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(up, "a whole site was refused");
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
        .env("QAHUB_SKIP_SITE_CHECK", "true")
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
