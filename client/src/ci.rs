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

fn env(name: &str) -> Option<String> {
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
