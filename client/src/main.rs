//! `qa-hub`: the command CI pipelines run to send test reports to QA Hub.
//!
//! Reads `QA_HUB_TOKEN` and `QA_HUB_URL` (flags override them), never prints the token,
//! and turns every failure into one line on stderr and a distinct exit code.

use std::{
    fs::File,
    io::{self, Read, Write},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand, ValueEnum};
use reqwest::{blocking::Client, StatusCode};
use serde_json::Value;

#[derive(Parser)]
#[command(name = "qa-hub", version, about = "Send test reports to QA Hub")]
struct Cli {
    /// API token (qh_…). Prefer the environment variable: flags show up in process lists.
    #[arg(long, env = "QA_HUB_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// QA Hub's address, like https://qa.example.com
    #[arg(long, env = "QA_HUB_URL", global = true)]
    url: Option<String>,
    /// Also trust this CA certificate (PEM): for a server with a private CA.
    #[arg(long, env = "QA_HUB_CA_CERT", global = true)]
    ca_cert: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import report files, each as a run of the project.
    Upload {
        #[arg(long, value_enum)]
        format: Format,
        #[arg(long)]
        project: String,
        /// Name of the run (default: derived from the file and date).
        #[arg(long)]
        run_name: Option<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Show the workspace, scopes and expiry of the token.
    Whoami,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Playwright,
    Junit,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::Playwright => "playwright",
            Format::Junit => "junit",
        }
    }
}

/// Exit codes, one per kind of failure, so CI scripts can tell them apart.
mod exit {
    pub const USAGE: u8 = 2;
    pub const UNAUTHORIZED: u8 = 3;
    pub const FORBIDDEN: u8 = 4;
    pub const NOT_FOUND: u8 = 5;
    pub const INVALID_REPORT: u8 = 6;
    pub const RATE_LIMITED: u8 = 7;
    pub const SERVER: u8 = 8;
    pub const FILE: u8 = 9;
    pub const NETWORK: u8 = 10;
}

struct Failure {
    code: u8,
    message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into() }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("qa-hub: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli) -> Result<(), Failure> {
    let token = cli.token.filter(|t| !t.trim().is_empty()).ok_or_else(|| {
        fail(
            exit::USAGE,
            "no token: set QA_HUB_TOKEN (or --token) to an API token from Settings → Developer → API Tokens",
        )
    })?;
    let url = cli
        .url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| fail(exit::USAGE, "no server: set QA_HUB_URL (or --url)"))?;
    let base = url.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(fail(exit::USAGE, format!("QA_HUB_URL must start with http:// or https://, got {base:?}")));
    }
    let mut builder =
        Client::builder().timeout(Duration::from_secs(600)).user_agent(concat!("qa-hub/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &cli.ca_cert {
        let pem = std::fs::read(path).map_err(|e| fail(exit::USAGE, format!("cannot read {}: {e}", path.display())))?;
        let ca = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| fail(exit::USAGE, format!("{} is not a PEM certificate: {e}", path.display())))?;
        builder = builder.add_root_certificate(ca);
    }
    let client = builder.build().map_err(|e| fail(exit::NETWORK, format!("cannot start an HTTP client: {e}")))?;
    let api = Api { client, base, token: token.trim().to_string() };
    match cli.command {
        Command::Whoami => whoami(&api),
        Command::Upload { format, project, run_name, files } => {
            for file in files {
                upload(&api, format, &project, run_name.as_deref(), &file)?;
            }
            Ok(())
        }
    }
}

struct Api {
    client: Client,
    base: String,
    token: String,
}

impl Api {
    fn send(&self, req: reqwest::blocking::RequestBuilder) -> Result<(reqwest::header::HeaderMap, Value), Failure> {
        let res = req.bearer_auth(&self.token).send().map_err(|e| {
            // reqwest's error names the URL, never the token.
            fail(exit::NETWORK, format!("cannot reach {}: {}", self.base, e.without_url()))
        })?;
        let status = res.status();
        let headers = res.headers().clone();
        let body: Value = res.json().unwrap_or(Value::Null);
        if status.is_success() {
            warn_if_expiring(&headers);
            return Ok((headers, body));
        }
        let code = body["error"]["code"].as_str().unwrap_or("unknown");
        let message = body["error"]["message"].as_str().unwrap_or("no details");
        let exit_code = match status {
            StatusCode::UNAUTHORIZED => exit::UNAUTHORIZED,
            StatusCode::FORBIDDEN => exit::FORBIDDEN,
            StatusCode::NOT_FOUND => exit::NOT_FOUND,
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::BAD_REQUEST => {
                exit::INVALID_REPORT
            }
            StatusCode::TOO_MANY_REQUESTS => exit::RATE_LIMITED,
            _ => exit::SERVER,
        };
        let hint = match status {
            StatusCode::NOT_FOUND => " (check the project key, and that the token may use that project)",
            StatusCode::TOO_MANY_REQUESTS => " (wait and retry)",
            _ => "",
        };
        Err(fail(exit_code, format!("{} {code}: {message}{hint}", status.as_u16())))
    }
}

/// Warns on stderr when the token expires within 7 days.
fn warn_if_expiring(headers: &reqwest::header::HeaderMap) {
    let Some(at) = headers.get("qahub-token-expires-at").and_then(|v| v.to_str().ok()) else { return };
    let Ok(at) = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339) else { return };
    let left = at - time::OffsetDateTime::now_utc();
    if left <= time::Duration::days(7) {
        let days = left.whole_days().max(0);
        eprintln!("qa-hub: warning: the token expires in {days} day(s), on {}: rotate it soon", at.date());
    }
}

fn whoami(api: &Api) -> Result<(), Failure> {
    let (_, me) = api.send(api.client.get(format!("{}/api/v1/me", api.base)))?;
    let scopes: Vec<&str> = me["scopes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let projects = match me["token"]["projects"].as_array() {
        Some(list) => list.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "),
        None => "all projects".into(),
    };
    println!(
        "workspace: {} ({})",
        me["tenant"]["name"].as_str().unwrap_or("?"),
        me["tenant"]["status"].as_str().unwrap_or("?")
    );
    println!(
        "token:     {} (qh_{}_…)",
        me["token"]["name"].as_str().unwrap_or("?"),
        me["token"]["prefix"].as_str().unwrap_or("?")
    );
    println!("scopes:    {}", scopes.join(", "));
    println!("projects:  {projects}");
    println!("expires:   {}", me["token"]["expires_at"].as_str().unwrap_or("never"));
    Ok(())
}

/// A file body that reports progress on stderr as it is read.
struct Progress {
    file: File,
    sent: u64,
    total: u64,
    last: Instant,
    shown: bool,
}

impl Read for Progress {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.sent += n as u64;
        if self.shown && (self.last.elapsed() > Duration::from_millis(250) || self.sent == self.total) {
            self.last = Instant::now();
            let pct = (self.sent * 100).checked_div(self.total).unwrap_or(100);
            eprint!("\r  sent {:.1} of {:.1} MB ({pct}%)", self.sent as f64 / 1e6, self.total as f64 / 1e6);
            let _ = io::stderr().flush();
            if self.sent == self.total {
                eprintln!();
            }
        }
        Ok(n)
    }
}

fn upload(api: &Api, format: Format, project: &str, run_name: Option<&str>, path: &PathBuf) -> Result<(), Failure> {
    let file = File::open(path).map_err(|e| fail(exit::FILE, format!("cannot read {}: {e}", path.display())))?;
    let total = file.metadata().map(|m| m.len()).unwrap_or(0);
    // Big files show progress; small ones just go.
    let shown = total >= 1_000_000;
    if shown {
        eprintln!("qa-hub: uploading {} ({:.1} MB)", path.display(), total as f64 / 1e6);
    }
    let body = reqwest::blocking::Body::sized(Progress { file, sent: 0, total, last: Instant::now(), shown }, total);
    let mut url = reqwest::Url::parse(&format!("{}/api/v1/projects/{}/runs/import", api.base, project.trim()))
        .map_err(|e| fail(exit::USAGE, format!("bad QA_HUB_URL: {e}")))?;
    url.query_pairs_mut().append_pair("format", format.as_str());
    if let Some(name) = run_name {
        url.query_pairs_mut().append_pair("name", name);
    }
    let (_, res) = api.send(api.client.post(url).header("content-type", "application/octet-stream").body(body))?;
    let run = &res["data"];
    let c = &run["counts"];
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    println!(
        "{}: {} — {} passed, {} failed, {} skipped, {} errors ({} total) in {:.1} s",
        path.display(),
        run["status"].as_str().unwrap_or("?").to_uppercase(),
        n("passed"),
        n("failed"),
        n("skipped"),
        n("error"),
        n("total"),
        run["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0
    );
    println!(
        "{}/api/v1/projects/{}/runs/{}",
        api.base,
        run["project"].as_str().unwrap_or(project),
        run["id"].as_str().unwrap_or("?")
    );
    Ok(())
}
