//! `qa-hub`: the command CI pipelines run to send test reports to QA Hub.
//!
//! Reads `QA_HUB_TOKEN` and `QA_HUB_URL` (flags override them), never prints the token,
//! and turns every failure into one line on stderr and a distinct exit code. An upload
//! never loses a result silently: each import carries an idempotency key derived from the
//! file, so network errors, 408, 429 and 5xx are retried safely; the server's receipt is
//! checked against the tests this command counted in the file itself.

mod ci;
mod oidc;
mod retry;

use std::{
    io::{self, Read, Write},
    path::PathBuf,
    process::ExitCode,
    time::{Duration, Instant},
};

use clap::{Parser, Subcommand, ValueEnum};
use reqwest::{blocking::Client, StatusCode};
use serde_json::Value;

use ci::Warnings;
use retry::Retry;

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
    ca_cert: Option<PathBuf>,
    /// Attempts after the first for network errors, 408, 429 and 5xx.
    #[arg(long, env = "QA_HUB_RETRIES", default_value_t = 5, global = true)]
    retries: u32,
    /// Stop retrying once this many seconds have passed since the first attempt.
    #[arg(long, env = "QA_HUB_RETRY_MAX_TIME", default_value_t = 300, global = true)]
    retry_max_time: u64,
    /// Without a token: the variable holding the job's OIDC ID token (GitLab `id_tokens:`).
    /// GitHub Actions needs none: the token is asked from the runner.
    #[arg(long, env = "QA_HUB_OIDC_TOKEN_ENV", default_value = "QA_HUB_ID_TOKEN", global = true)]
    oidc_token_env: String,
    /// The audience to ask the ID token for (default: QA_HUB_URL).
    #[arg(long, env = "QA_HUB_OIDC_AUDIENCE", global = true)]
    oidc_audience: Option<String>,
    /// Without a token: the workspace whose trust policies the exchange consults (its
    /// name). Needed when the hub has several workspaces and none holds QA_HUB_URL's host.
    #[arg(long, env = "QA_HUB_WORKSPACE", global = true)]
    workspace: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import report files into the project: each file a run, or all of them (and every
    /// other upload with the same run key) one run.
    Upload {
        #[arg(long, value_enum)]
        format: Format,
        /// The project's key. Default: QA_HUB_PROJECT, else the token's project when it
        /// has exactly one.
        #[arg(long, env = "QA_HUB_PROJECT")]
        project: Option<String>,
        /// Name of the run (default: derived from the format and date).
        #[arg(long)]
        run_name: Option<String>,
        /// Uploads with this key add to one run until `qa-hub finish` (parallel shards).
        /// Default inside CI: the pipeline's run (GitHub GITHUB_RUN_ID+GITHUB_RUN_ATTEMPT,
        /// GitLab CI_PIPELINE_ID, Buildkite BUILDKITE_BUILD_ID, CircleCI
        /// CIRCLE_WORKFLOW_ID, Jenkins BUILD_TAG).
        #[arg(long, env = "QA_HUB_RUN_KEY")]
        run_key: Option<String>,
        /// Make a run of its own even inside CI (no default run key).
        #[arg(long, conflicts_with = "run_key")]
        no_run_key: bool,
        /// Exit 0 when the upload did not land (a CI warning is still printed).
        #[arg(long)]
        continue_on_error: bool,
        /// Print the server's answer as JSON on stdout (one line per file).
        #[arg(long)]
        json: bool,
        /// Exit 1 when an uploaded report has failed or errored tests (by default an
        /// upload that landed exits 0 whatever the tests did).
        #[arg(long)]
        fail_on_failures: bool,
        /// The commit, branch and build link the run page shows (default: from the CI).
        #[arg(long)]
        commit: Option<String>,
        #[arg(long)]
        branch: Option<String>,
        #[arg(long)]
        build_url: Option<String>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Close the run that shards with a run key uploaded into; later shards are refused.
    Finish {
        #[arg(long, env = "QA_HUB_PROJECT")]
        project: Option<String>,
        /// Default inside CI: the pipeline's run, as for `upload`.
        #[arg(long, env = "QA_HUB_RUN_KEY")]
        run_key: Option<String>,
        #[arg(long)]
        continue_on_error: bool,
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
    fn reports(self) -> reports::Format {
        match self {
            Format::Playwright => reports::Format::Playwright,
            Format::Junit => reports::Format::Junit,
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
    pub const RECEIPT: u8 = 11;
    pub const CONFLICT: u8 = 12;
    /// `--fail-on-failures` and the report had failed or errored tests.
    pub const TESTS_FAILED: u8 = 1;
}

pub struct Failure {
    code: u8,
    message: String,
}

fn fail(code: u8, message: impl Into<String>) -> Failure {
    Failure { code, message: message.into() }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let warnings = Warnings::from_env();
    let continue_on_error = match &cli.command {
        Command::Upload { continue_on_error, .. } | Command::Finish { continue_on_error, .. } => *continue_on_error,
        Command::Whoami => false,
    };
    match run(cli, &warnings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) if continue_on_error => {
            warnings.warn(&format!("the upload did not land, continuing (--continue-on-error): {}", f.message));
            ExitCode::SUCCESS
        }
        Err(f) => {
            warnings.error(&f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run(cli: Cli, warnings: &Warnings) -> Result<(), Failure> {
    let token = cli.token.clone().filter(|t| !t.trim().is_empty());
    let oidc = oidc::Source::from_env(&cli.oidc_token_env);
    if token.is_none() && oidc.is_none() {
        return Err(no_token(&cli.oidc_token_env));
    }
    let url = cli
        .url
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| fail(exit::USAGE, "no server: set QA_HUB_URL (or --url)"))?;
    let base = url.trim_end_matches('/').to_string();
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(fail(exit::USAGE, format!("QA_HUB_URL must start with http:// or https://, got {base:?}")));
    }
    let mut builder = Client::builder()
        .timeout(Duration::from_secs(600))
        .connect_timeout(Duration::from_secs(20))
        .user_agent(concat!("qa-hub/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &cli.ca_cert {
        let pem = std::fs::read(path).map_err(|e| fail(exit::USAGE, format!("cannot read {}: {e}", path.display())))?;
        let ca = reqwest::Certificate::from_pem(&pem)
            .map_err(|e| fail(exit::USAGE, format!("{} is not a PEM certificate: {e}", path.display())))?;
        builder = builder.add_root_certificate(ca);
    }
    let client = builder.build().map_err(|e| fail(exit::NETWORK, format!("cannot start an HTTP client: {e}")))?;
    let retry = Retry { retries: cli.retries, max_time: Duration::from_secs(cli.retry_max_time) };
    let token = match (token, oidc) {
        (Some(token), _) => token.trim().to_string(),
        (None, Some(source)) => {
            let audience = cli.oidc_audience.clone().unwrap_or_else(|| base.clone());
            let (token, line) = oidc::exchange(&client, &retry, &base, &audience, cli.workspace.as_deref(), &source)?;
            eprintln!("{line}");
            token
        }
        (None, None) => return Err(no_token(&cli.oidc_token_env)),
    };
    let api = Api { client, base, token, retry, warnings };
    match cli.command {
        Command::Whoami => whoami(&api),
        Command::Upload {
            format,
            project,
            run_name,
            run_key,
            no_run_key,
            json,
            fail_on_failures,
            commit,
            branch,
            build_url,
            files,
            ..
        } => {
            let project = choose_project(&api, project)?;
            let run_key = if no_run_key { None } else { run_key.or_else(ci::run_key) };
            let found = ci::context();
            let context = ci::Context {
                commit: commit.or(found.commit),
                branch: branch.or(found.branch),
                build_url: build_url.or(found.build_url),
                job: found.job,
            };
            let upload = Upload {
                format,
                project: &project,
                run_name: run_name.as_deref(),
                run_key: run_key.as_deref(),
                json,
                context: &context,
            };
            let mut failing = 0;
            for file in files {
                failing += upload.send(&api, &file)?;
            }
            if fail_on_failures && failing > 0 {
                return Err(fail(
                    exit::TESTS_FAILED,
                    format!("{failing} test(s) failed or errored (--fail-on-failures)"),
                ));
            }
            Ok(())
        }
        Command::Finish { project, run_key, .. } => {
            let project = choose_project(&api, project)?;
            let run_key = run_key.or_else(ci::run_key).ok_or_else(|| {
                fail(exit::USAGE, "no run key: pass --run-key (or QA_HUB_RUN_KEY), the one the shards uploaded with")
            })?;
            finish(&api, &project, &run_key)
        }
    }
}

fn no_token(variable: &str) -> Failure {
    fail(
        exit::USAGE,
        format!(
            "no token: set QA_HUB_TOKEN (or --token) to an API token from Settings → Developer → API Tokens, \
             or run inside GitHub Actions with `id-token: write`, or GitLab CI with an id_tokens variable {variable} (Trusted CI)"
        ),
    )
}

struct Api<'a> {
    client: Client,
    base: String,
    token: String,
    retry: Retry,
    warnings: &'a Warnings,
}

/// A final answer from the server.
struct Answer {
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Api<'_> {
    fn url(&self, path: &str) -> Result<reqwest::Url, Failure> {
        reqwest::Url::parse(&format!("{}/api/v1{path}", self.base))
            .map_err(|e| fail(exit::USAGE, format!("bad QA_HUB_URL: {e}")))
    }

    /// Sends the request `make` builds, again after each retryable failure.
    fn send(&self, what: &str, make: impl Fn() -> reqwest::blocking::RequestBuilder) -> Result<Answer, Failure> {
        let outcome = self.retry.run(what, || make().bearer_auth(&self.token).send());
        let res = match outcome {
            Ok(res) => res,
            // reqwest's error names the URL, never the token.
            Err(retry::GaveUp::Network(e)) => {
                return Err(fail(exit::NETWORK, format!("cannot reach {}: {}", self.base, e.without_url())))
            }
        };
        let status = res.status();
        let headers = res.headers().clone();
        let body: Value = res.json().unwrap_or(Value::Null);
        if status.is_success() {
            self.warnings.token_headers(&headers);
            return Ok(Answer { headers, body });
        }
        let code = body["error"]["code"].as_str().unwrap_or("unknown");
        let message = body["error"]["message"].as_str().unwrap_or("no details");
        let exit_code = match status {
            StatusCode::UNAUTHORIZED => exit::UNAUTHORIZED,
            StatusCode::FORBIDDEN => exit::FORBIDDEN,
            StatusCode::NOT_FOUND => exit::NOT_FOUND,
            StatusCode::CONFLICT => exit::CONFLICT,
            StatusCode::UNPROCESSABLE_ENTITY | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::BAD_REQUEST => {
                exit::INVALID_REPORT
            }
            StatusCode::TOO_MANY_REQUESTS => exit::RATE_LIMITED,
            _ => exit::SERVER,
        };
        let hint = match status {
            StatusCode::NOT_FOUND => " (check the project key, and that the token may use that project)",
            StatusCode::TOO_MANY_REQUESTS => " (still limited after the retries; wait and run again)",
            _ => "",
        };
        Err(fail(exit_code, format!("{} {code}: {message}{hint}", status.as_u16())))
    }

    fn me(&self) -> Result<Value, Failure> {
        let url = self.url("/me")?;
        Ok(self.send("whoami", || self.client.get(url.clone()))?.body)
    }
}

/// The project to upload to: the flag or QA_HUB_PROJECT, else the token's only project.
fn choose_project(api: &Api, given: Option<String>) -> Result<String, Failure> {
    if let Some(key) = given.map(|k| k.trim().to_string()).filter(|k| !k.is_empty()) {
        return Ok(key);
    }
    let me = api.me()?;
    match me["token"]["projects"].as_array() {
        Some(list) if list.len() == 1 => Ok(list[0].as_str().unwrap_or_default().to_string()),
        Some(list) => {
            let keys: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
            Err(fail(
                exit::USAGE,
                format!(
                    "which project? pass --project KEY or set QA_HUB_PROJECT; this token may use {}",
                    if keys.is_empty() { "no project".into() } else { keys.join(", ") }
                ),
            ))
        }
        None => Err(fail(
            exit::USAGE,
            "which project? pass --project KEY or set QA_HUB_PROJECT; this token may use every project of the workspace",
        )),
    }
}

fn whoami(api: &Api) -> Result<(), Failure> {
    let me = api.me()?;
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

/// A report body read from disk as it is sent (each attempt opens the file afresh at
/// its first read), reporting progress on stderr.
struct Progress {
    path: PathBuf,
    file: Option<io::BufReader<std::fs::File>>,
    sent: u64,
    total: u64,
    last: Instant,
    shown: bool,
}

impl Read for Progress {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let file = match &mut self.file {
            Some(file) => file,
            None => self.file.insert(io::BufReader::new(std::fs::File::open(&self.path)?)),
        };
        let n = file.read(buf)?;
        self.sent += n as u64;
        let sent = self.sent;
        if self.shown && n > 0 && (self.last.elapsed() > Duration::from_millis(250) || sent == self.total) {
            self.last = Instant::now();
            let pct = (sent * 100).checked_div(self.total).unwrap_or(100);
            eprint!("\r  sent {:.1} of {:.1} MB ({pct}%)", sent as f64 / 1e6, self.total as f64 / 1e6);
            let _ = io::stderr().flush();
            if sent == self.total {
                eprintln!();
            }
        }
        Ok(n)
    }
}

/// The key that makes a retried (or re-run) upload of the same file land once: the
/// file's content hash with the project, the run key, the format and the run name.
fn idempotency_key(content: &[u8], project: &str, run_key: Option<&str>, format: Format, name: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let format = format.reports().as_str();
    for part in [project, run_key.unwrap_or(""), format, name.unwrap_or("")] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    h.update(content);
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("qa-hub-{hex}")
}

/// One `qa-hub upload` command's settings, for each of its files.
struct Upload<'a> {
    format: Format,
    project: &'a str,
    run_name: Option<&'a str>,
    run_key: Option<&'a str>,
    json: bool,
    context: &'a ci::Context,
}

impl Upload<'_> {
    /// Sends one report; answers how many of its tests failed or errored.
    fn send(&self, api: &Api, path: &PathBuf) -> Result<u64, Failure> {
        let (format, project) = (self.format, self.project);
        // The file is read as a stream three times and never held: counted (by the same
        // reader as the server's: what the receipt must match), hashed (the key), sent.
        let cannot = |e: io::Error| fail(exit::FILE, format!("cannot read {}: {e}", path.display()));
        let open = || std::fs::File::open(path).map(io::BufReader::new).map_err(cannot);
        let counted =
            reports::read_from(format.reports(), open()?, usize::MAX, |_| std::ops::ControlFlow::Continue(()))
                .map_err(|e| fail(exit::INVALID_REPORT, format!("{} is not a readable report: {e}", path.display())))?;
        let content = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            io::copy(&mut open()?, &mut h).map_err(cannot)?;
            h.finalize()
        };
        let key = idempotency_key(&content, project, self.run_key, format, self.run_name);
        let total = std::fs::metadata(path).map_err(cannot)?.len();
        // Big files show progress; small ones just go.
        let shown = total >= 1_000_000;
        if shown {
            eprintln!("qa-hub: uploading {} ({:.1} MB)", path.display(), total as f64 / 1e6);
        }
        let mut url = api.url(&format!("/projects/{project}/runs/import"))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("format", format.reports().as_str());
            let c = self.context;
            for (name, value) in [
                ("name", self.run_name),
                ("run_key", self.run_key),
                ("commit", c.commit.as_deref()),
                ("branch", c.branch.as_deref()),
                ("build_url", c.build_url.as_deref()),
                ("job", c.job.as_deref()),
            ] {
                if let Some(value) = value {
                    query.append_pair(name, value);
                }
            }
        }
        let answer = api.send(&format!("upload of {}", path.display()), || {
            let body = Progress { path: path.clone(), file: None, sent: 0, total, last: Instant::now(), shown };
            api.client
                .post(url.clone())
                .header("content-type", "application/octet-stream")
                .header("idempotency-key", &key)
                .body(reqwest::blocking::Body::sized(body, total))
        })?;
        let res = answer.body;
        check_receipt(&res["receipt"], &counted, path)?;
        let failing = counted.failed + counted.error;
        if self.json {
            println!("{res}");
            return Ok(failing);
        }
        let run = &res["data"];
        let c = &res["receipt"]["accepted"];
        let n = |v: &Value, k: &str| v[k].as_u64().unwrap_or(0);
        let replayed = answer.headers.get("idempotent-replayed").is_some_and(|v| v == "true");
        println!(
            "{}: {} — {} passed, {} failed, {} skipped, {} errors ({} total) in {:.1} s{}",
            path.display(),
            run["status"].as_str().unwrap_or("?").to_uppercase(),
            n(c, "passed"),
            n(c, "failed"),
            n(c, "skipped"),
            n(c, "error"),
            n(c, "total"),
            run["duration_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
            if replayed { " (already uploaded: the server answered the first upload)" } else { "" }
        );
        if let Some(run_key) = run["run_key"].as_str() {
            println!(
                "  run key {run_key}: {} shard(s) so far, {} results in all; close it with `qa-hub finish`",
                run["shards"].as_u64().unwrap_or(0),
                n(&run["counts"], "total")
            );
        }
        // The run's page, for people (the API's URL is in --json's answer).
        println!(
            "{}/projects/{}/runs/{}",
            api.base,
            run["project"].as_str().unwrap_or(project),
            run["id"].as_str().unwrap_or("?")
        );
        Ok(failing)
    }
}

/// What the server says it accepted must be what the file holds, outcome by outcome.
fn check_receipt(receipt: &Value, counted: &reports::Tally, path: &std::path::Path) -> Result<(), Failure> {
    let got = |k: &str| receipt["accepted"][k].as_u64();
    let read = receipt["tests_read"].as_u64();
    let want = [
        ("tests", counted.total, read),
        ("passed", counted.passed, got("passed")),
        ("failed", counted.failed, got("failed")),
        ("skipped", counted.skipped, got("skipped")),
        ("errors", counted.error, got("error")),
    ];
    let off: Vec<String> = want
        .iter()
        .filter(|(_, mine, theirs)| Some(*mine) != *theirs)
        .map(|(what, mine, theirs)| {
            format!("{what}: {mine} in the file, {} accepted", theirs.map_or("none".into(), |n| n.to_string()))
        })
        .collect();
    if off.is_empty() {
        return Ok(());
    }
    Err(fail(
        exit::RECEIPT,
        format!(
            "the server did not accept every result of {} ({}); the upload is incomplete",
            path.display(),
            off.join("; ")
        ),
    ))
}

fn finish(api: &Api, project: &str, run_key: &str) -> Result<(), Failure> {
    let mut url = api.url(&format!("/projects/{project}/runs"))?;
    url.query_pairs_mut().append_pair("run_key", run_key).append_pair("limit", "1");
    let found = api.send("finding the run", || api.client.get(url.clone()))?.body;
    let id = found["data"][0]["id"]
        .as_str()
        .ok_or_else(|| {
            fail(exit::NOT_FOUND, format!("no run with run key {run_key:?} in {project}: nothing was uploaded with it"))
        })?
        .to_string();
    let url = api.url(&format!("/projects/{project}/runs/{id}/complete"))?;
    let run = api.send("finishing the run", || api.client.post(url.clone()))?.body;
    let run = &run["data"];
    let c = &run["counts"];
    let n = |k: &str| c[k].as_u64().unwrap_or(0);
    println!(
        "run {id}: {} — {} passed, {} failed, {} skipped, {} errors ({} total) from {} shard(s)",
        run["status"].as_str().unwrap_or("?").to_uppercase(),
        n("passed"),
        n("failed"),
        n("skipped"),
        n("error"),
        n("total"),
        run["shards"].as_u64().unwrap_or(0)
    );
    Ok(())
}
