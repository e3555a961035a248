//! Test management: cases, runs and results inside a project, and the report importers
//! that turn a Playwright JSON report or a JUnit XML file into a run.

pub mod api;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Case {
    pub id: String,
    /// The project's key.
    pub project: String,
    pub title: String,
    pub description: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    pub title: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateCase {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Open,
    Passed,
    Failed,
    /// Results are still landing (an import is writing them); never set by hand.
    Importing,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Open => "open",
            RunStatus::Passed => "passed",
            RunStatus::Failed => "failed",
            RunStatus::Importing => "importing",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [RunStatus::Open, RunStatus::Passed, RunStatus::Failed, RunStatus::Importing]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Counts {
    pub total: u64,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub error: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Run {
    pub id: String,
    pub project: String,
    pub name: String,
    pub status: RunStatus,
    /// `playwright`, `junit`, or `null` for runs made through the API.
    pub source: Option<String>,
    pub counts: Counts,
    /// Sum of the results' durations, in milliseconds.
    pub duration_ms: u64,
    /// The run key its imports share (`?run_key=`), for a run made of shards.
    pub run_key: Option<String>,
    /// How many imports added to it.
    pub shards: u32,
    /// Who uploaded it: a token's name and masked prefix, or a person's email.
    #[serde(default)]
    pub uploaded_by: Option<String>,
    /// Where in CI it came from, when the upload said.
    #[serde(default)]
    pub ci: CiContext,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub updated_at: OffsetDateTime,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRun {
    pub name: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateRun {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub status: Option<RunStatus>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    Passed,
    Failed,
    Skipped,
    Error,
}

#[cfg(feature = "ssr")]
impl From<reports::ResultStatus> for ResultStatus {
    fn from(s: reports::ResultStatus) -> Self {
        match s {
            reports::ResultStatus::Passed => ResultStatus::Passed,
            reports::ResultStatus::Failed => ResultStatus::Failed,
            reports::ResultStatus::Skipped => ResultStatus::Skipped,
            reports::ResultStatus::Error => ResultStatus::Error,
        }
    }
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Passed => "passed",
            ResultStatus::Failed => "failed",
            ResultStatus::Skipped => "skipped",
            ResultStatus::Error => "error",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [ResultStatus::Passed, ResultStatus::Failed, ResultStatus::Skipped, ResultStatus::Error]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TestResult {
    pub id: String,
    pub run_id: String,
    pub case_id: String,
    pub case_title: String,
    pub status: ResultStatus,
    pub duration_ms: Option<u64>,
    pub message: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// The CI build a run came from (`?commit=&branch=&build_url=&job=` on an import;
/// `qa-hub` fills them from the CI's environment).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CiContext {
    pub commit: Option<String>,
    pub branch: Option<String>,
    /// An `http(s)://` link to the build.
    pub build_url: Option<String>,
    pub job: Option<String>,
}

impl CiContext {
    /// Each field bounded and printable; the build URL only `http://` or `https://` (it
    /// becomes a link on the run page).
    pub fn checked(self) -> Result<Self, AppError> {
        let field = |name: &str, v: Option<String>, max: usize| -> Result<Option<String>, AppError> {
            let Some(v) = v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty()) else { return Ok(None) };
            if v.chars().count() > max || v.chars().any(char::is_control) {
                return Err(AppError::invalid(format!("{name} has at most {max} printable characters.")));
            }
            Ok(Some(v))
        };
        let build_url = field("build_url", self.build_url, 500)?;
        if build_url.as_deref().is_some_and(|u| !(u.starts_with("https://") || u.starts_with("http://"))) {
            return Err(AppError::invalid("build_url is an http:// or https:// link."));
        }
        Ok(CiContext {
            commit: field("commit", self.commit, 100)?,
            branch: field("branch", self.branch, 200)?,
            build_url,
            job: field("job", self.job, 200)?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.commit.is_none() && self.branch.is_none() && self.build_url.is_none() && self.job.is_none()
    }
}

/// What one import accepted: the tests it read from the report, and the results it
/// stored by outcome. A client that counts the report itself compares the two.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Receipt {
    pub tests_read: u64,
    pub accepted: Counts,
}

/// The answer to an import: the run (with every shard's results counted) and this
/// import's receipt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ImportAnswer {
    pub data: Run,
    pub receipt: Receipt,
}

/// A run key or an idempotency key: 1 to 128 printable ASCII characters.
pub fn valid_key(key: &str) -> bool {
    (1..=128).contains(&key.len()) && key.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// One result to record: for an existing case (`case_id`) or by title (the case is
/// created when the project has none with that title).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewResult {
    #[serde(default)]
    pub case_id: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
    pub status: ResultStatus,
    #[serde(default)]
    pub duration_ms: Option<u64>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResultBatch {
    pub results: Vec<NewResult>,
}

pub const BATCH_MAX: usize = 1000;
pub const TITLE_MAX: usize = 500; // the same as reports::TITLE_MAX
pub const MESSAGE_MAX: usize = 10_000;

pub fn normalize_title(input: &str) -> Result<String, AppError> {
    let title = input.trim();
    if title.is_empty() {
        return Err(AppError::invalid("Enter a title."));
    }
    if title.chars().count() > TITLE_MAX || title.chars().any(|c| c.is_control() && c != '\t') {
        return Err(AppError::invalid(format!("A title has at most {TITLE_MAX} printable characters.")));
    }
    Ok(title.to_string())
}

/// Messages are kept, but bounded, and without NUL characters (which PostgreSQL's text
/// cannot hold: one in a failure's output must not fail the import).
pub fn clip_message(message: Option<String>) -> Option<String> {
    message.map(|m| {
        let m = if m.contains('\0') { m.replace('\0', "") } else { m };
        if m.chars().count() > MESSAGE_MAX {
            m.chars().take(MESSAGE_MAX).collect()
        } else {
            m
        }
    })
}
