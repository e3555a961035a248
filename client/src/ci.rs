//! What the CI around the command tells it, and how it speaks back: warnings as GitHub
//! Actions annotations (`::warning::`), as a `WARNING:` line in GitLab CI (a line of its
//! own, outside any collapsed section, so it shows in the job log), plain text elsewhere.

use reqwest::header::HeaderMap;
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ci {
    GitHub,
    GitLab,
    Other,
}

pub struct Warnings {
    ci: Ci,
}

/// A CI variable, trimmed; unset and empty are the same.
pub fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// The default run key: the pipeline run every job of it shares.
pub fn run_key() -> Option<String> {
    if let Some(id) = env("GITHUB_RUN_ID") {
        return Some(format!("github-{id}-{}", env("GITHUB_RUN_ATTEMPT").unwrap_or_else(|| "1".into())));
    }
    [
        ("CI_PIPELINE_ID", "gitlab"),
        ("BUILDKITE_BUILD_ID", "buildkite"),
        ("CIRCLE_WORKFLOW_ID", "circleci"),
        ("BUILD_TAG", "jenkins"),
    ]
    .into_iter()
    .find_map(|(var, ci)| env(var).map(|id| format!("{ci}-{id}")))
    .map(|key| key.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(128).collect())
}

impl Warnings {
    pub fn from_env() -> Self {
        let ci = if env("GITHUB_ACTIONS").as_deref() == Some("true") {
            Ci::GitHub
        } else if env("GITLAB_CI").as_deref() == Some("true") {
            Ci::GitLab
        } else {
            Ci::Other
        };
        Warnings { ci }
    }

    /// A warning where the CI shows warnings. Annotations go to stdout, where the GitHub
    /// runner reads workflow commands.
    pub fn warn(&self, message: &str) {
        let message = message.replace(['\r', '\n'], " ");
        match self.ci {
            Ci::GitHub => println!("::warning title=QA Hub::{}", escape(&message)),
            Ci::GitLab => eprintln!("\x1b[0K\x1b[33;1mWARNING: qa-hub: {message}\x1b[0m"),
            Ci::Other => eprintln!("qa-hub: warning: {message}"),
        }
    }

    /// The reason the command failed.
    pub fn error(&self, message: &str) {
        if self.ci == Ci::GitHub {
            println!("::error title=QA Hub::{}", escape(&message.replace(['\r', '\n'], " ")));
        }
        eprintln!("qa-hub: {message}");
    }

    /// Warnings from the token data the server sends on every token-authenticated
    /// answer: `QAHub-Token-Expires-At` within 7 days, `QAHub-Token-Retires-At` (a
    /// rotation replaced it) and `QAHub-Token-Hint` (least privilege).
    pub fn token_headers(&self, headers: &HeaderMap) {
        let at = |name: &str| {
            headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| OffsetDateTime::parse(v, &Rfc3339).ok())
        };
        let now = OffsetDateTime::now_utc();
        if let Some(at) = at("qahub-token-retires-at") {
            self.warn(&format!(
                "this token was replaced by a rotation and stops working on {} UTC: put the new token in the CI secret",
                at.date()
            ));
        } else if let Some(at) = at("qahub-token-expires-at") {
            let left = at - now;
            if left <= time::Duration::days(7) {
                self.warn(&format!(
                    "the QA Hub token expires in {} day(s), on {}: rotate it and update the CI secret",
                    left.whole_days().max(0),
                    at.date()
                ));
            }
        }
        if let Some(hint) = headers.get("qahub-token-hint").and_then(|v| v.to_str().ok()) {
            self.warn(hint);
        }
    }
}

/// GitHub's workflow-command escaping for a message.
fn escape(message: &str) -> String {
    message.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// The build an upload comes from, as the run page shows it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Context {
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub build_url: Option<String>,
    pub job: Option<String>,
}

/// Commit, branch, build link and job name from GitHub Actions, GitLab CI, Jenkins,
/// CircleCI, Buildkite or Azure Pipelines (the first one whose variables are set).
pub fn context() -> Context {
    let e = env;
    if e("GITHUB_ACTIONS").as_deref() == Some("true") {
        let build_url = match (e("GITHUB_SERVER_URL"), e("GITHUB_REPOSITORY"), e("GITHUB_RUN_ID")) {
            (Some(server), Some(repo), Some(run)) => Some(format!("{server}/{repo}/actions/runs/{run}")),
            _ => None,
        };
        return Context {
            commit: e("GITHUB_SHA"),
            branch: e("GITHUB_HEAD_REF").or_else(|| e("GITHUB_REF_NAME")),
            build_url,
            job: e("GITHUB_JOB"),
        };
    }
    if e("GITLAB_CI").as_deref() == Some("true") {
        return Context {
            commit: e("CI_COMMIT_SHA"),
            branch: e("CI_COMMIT_REF_NAME"),
            build_url: e("CI_JOB_URL").or_else(|| e("CI_PIPELINE_URL")),
            job: e("CI_JOB_NAME"),
        };
    }
    if e("BUILDKITE").as_deref() == Some("true") {
        return Context {
            commit: e("BUILDKITE_COMMIT"),
            branch: e("BUILDKITE_BRANCH"),
            build_url: e("BUILDKITE_BUILD_URL"),
            job: e("BUILDKITE_LABEL"),
        };
    }
    if e("CIRCLECI").as_deref() == Some("true") {
        return Context {
            commit: e("CIRCLE_SHA1"),
            branch: e("CIRCLE_BRANCH"),
            build_url: e("CIRCLE_BUILD_URL"),
            job: e("CIRCLE_JOB"),
        };
    }
    if e("TF_BUILD").as_deref().is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        let build_url = match (e("SYSTEM_COLLECTIONURI"), e("SYSTEM_TEAMPROJECT"), e("BUILD_BUILDID")) {
            (Some(collection), Some(project), Some(id)) => {
                Some(format!("{collection}{project}/_build/results?buildId={id}"))
            }
            _ => None,
        };
        return Context {
            commit: e("BUILD_SOURCEVERSION"),
            branch: e("BUILD_SOURCEBRANCHNAME"),
            build_url,
            job: e("SYSTEM_JOBDISPLAYNAME").or_else(|| e("AGENT_JOBNAME")),
        };
    }
    if e("JENKINS_URL").is_some() {
        return Context {
            commit: e("GIT_COMMIT"),
            branch: e("BRANCH_NAME").or_else(|| e("GIT_BRANCH")),
            build_url: e("BUILD_URL"),
            job: e("JOB_NAME"),
        };
    }
    Context::default()
}
