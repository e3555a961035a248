//! Trusted CI: a workspace trusts a CI provider's OpenID Connect identity (a trust
//! policy), and a job that presents a matching ID token gets a short-lived `qh_` token
//! instead of storing a long-lived one. Types and pure rules; the exchange is in `server`.

pub mod api;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{error::AppError, tokens::Scope};

/// GitHub Actions' issuer.
pub const GITHUB_ISSUER: &str = "https://token.actions.githubusercontent.com";
/// GitLab.com's issuer (a self-managed GitLab is its own URL).
pub const GITLAB_ISSUER: &str = "https://gitlab.com";

/// Claims that say which repository, project or owner a job runs for (GitHub's and
/// GitLab's): a policy pins at least one, and a condition on any of them is an exact
/// value, never a glob (`acme*` would match `acme-evil/app`, `1*` any id).
pub const SOURCE_CLAIMS: [&str; 6] =
    ["repository", "repository_id", "repository_owner", "project_path", "project_id", "namespace_path"];

/// Whether a policy's condition on `claim` matches the job's `value`: exactly for the
/// source claims, by `*` glob for the others.
pub fn condition_matches(claim: &str, pattern: &str, value: &str) -> bool {
    if SOURCE_CLAIMS.contains(&claim) {
        pattern == value
    } else {
        glob_match(pattern, value)
    }
}

pub const LIFETIME_MAX_MINUTES: u32 = 15;
pub const LIFETIME_DEFAULT_MINUTES: u32 = 10;
pub const NAME_MAX: usize = 100;
const CONDITIONS_MAX: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum PolicyStatus {
    Active,
    Disabled,
}

impl PolicyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyStatus::Active => "active",
            PolicyStatus::Disabled => "disabled",
        }
    }
    pub fn parse(s: &str) -> Self {
        if s == "active" {
            PolicyStatus::Active
        } else {
            PolicyStatus::Disabled
        }
    }
}

/// A trust policy as the API and the page show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TrustPolicy {
    pub id: String,
    pub name: String,
    pub issuer: String,
    pub audience: String,
    /// Claim name → exact value or `*` glob; all must match.
    pub conditions: BTreeMap<String, String>,
    /// Project keys the minted token reaches; `None`: every project (an owner's choice).
    pub projects: Option<Vec<String>>,
    /// `read` or `write`.
    pub scopes: Vec<Scope>,
    pub token_lifetime_minutes: u32,
    pub status: PolicyStatus,
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

/// `POST /api/v1/trust-policies`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct NewTrustPolicy {
    pub name: String,
    pub issuer: String,
    /// Default: the hub's own URL.
    #[serde(default)]
    pub audience: Option<String>,
    pub conditions: BTreeMap<String, String>,
    /// Project keys; `null` (every project) only an owner may choose.
    pub projects: Option<Vec<String>>,
    pub scopes: Vec<Scope>,
    /// 1 to 15, default 10.
    #[serde(default)]
    pub token_lifetime_minutes: Option<u32>,
}

/// `PATCH /api/v1/trust-policies/{id}`: fields left out stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UpdateTrustPolicy {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub conditions: Option<BTreeMap<String, String>>,
    #[serde(default, with = "crate::tokens::double_option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Vec<String>>))]
    pub projects: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
    #[serde(default)]
    pub token_lifetime_minutes: Option<u32>,
}

/// `POST /api/v1/oidc/token`. `Debug` never shows the ID token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OidcExchange {
    /// The CI job's ID token (a JWT).
    pub id_token: String,
    /// The workspace whose trust policies are consulted (its name). Without it: the
    /// workspace that holds the request's host name, else the hub's only workspace.
    #[serde(default)]
    pub workspace: Option<String>,
}

/// What the exchange answers: a workspace token restricted as the policy says. `Debug`
/// never shows the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct OidcToken {
    /// The full token, shown once.
    pub token: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
    /// `None`: every project.
    pub projects: Option<Vec<String>>,
    pub scopes: Vec<Scope>,
    pub policy_id: String,
}

impl std::fmt::Debug for OidcExchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcExchange")
            .field("id_token", &crate::tokens::Redacted)
            .field("workspace", &self.workspace)
            .finish()
    }
}

impl std::fmt::Debug for OidcToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcToken")
            .field("token", &crate::tokens::Redacted)
            .field("expires_at", &self.expires_at)
            .field("projects", &self.projects)
            .field("scopes", &self.scopes)
            .field("policy_id", &self.policy_id)
            .finish()
    }
}

/// `*` matches any run of characters (also none); everything else matches itself.
pub fn glob_match(pattern: &str, value: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == value;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if value.len() < first.len() + last.len() || !value.starts_with(first) || !value.ends_with(last) {
        return false;
    }
    let mut rest = &value[first.len()..value.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Conditions that pin the source: at least one of [`SOURCE_CLAIMS`], and every condition
/// on one of them an exact value (an organisation is pinned by `repository_owner` or
/// `namespace_path`, never by `acme/*`). Globs are for the other claims (`ref`, …).
pub fn check_conditions(conditions: &BTreeMap<String, String>) -> Result<(), AppError> {
    if conditions.len() > CONDITIONS_MAX {
        return Err(AppError::invalid(format!("A policy has at most {CONDITIONS_MAX} conditions.")));
    }
    for (claim, value) in conditions {
        let printable = |s: &str| !s.is_empty() && s.len() <= 300 && !s.chars().any(char::is_control);
        if !printable(claim) || !printable(value) {
            return Err(AppError::invalid(format!("The condition on {claim:?} needs a claim name and a value.")));
        }
    }
    if let Some((claim, value)) =
        conditions.iter().find(|(c, v)| SOURCE_CLAIMS.contains(&c.as_str()) && v.contains('*'))
    {
        return Err(AppError::invalid(format!(
            "The condition {claim}={value} must be an exact value: a * there would match other owners' repositories (pin an organisation with repository_owner or namespace_path)."
        )));
    }
    if !SOURCE_CLAIMS.iter().any(|c| conditions.contains_key(*c)) {
        return Err(AppError::invalid(format!(
            "Pin the source: add an exact condition on {} (GitHub: repository; GitLab: project_path).",
            SOURCE_CLAIMS.join(", ")
        )));
    }
    Ok(())
}

/// `claim=value` lines (the page's text box) as conditions.
pub fn parse_conditions(text: &str) -> Result<BTreeMap<String, String>, AppError> {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (claim, value) = line
            .split_once('=')
            .ok_or_else(|| AppError::invalid(format!("Write each condition as claim=value, not {line:?}.")))?;
        out.insert(claim.trim().to_string(), value.trim().to_string());
    }
    Ok(out)
}

/// The scopes a minted token may carry: `read`, or `write` (which implies read).
pub fn check_scopes(scopes: &[Scope]) -> Result<Vec<Scope>, AppError> {
    match crate::tokens::top_scope(scopes) {
        Some(Scope::Read) => Ok(vec![Scope::Read]),
        Some(Scope::Write) => Ok(vec![Scope::Read, Scope::Write]),
        Some(Scope::Admin) => Err(AppError::invalid("A minted token may read or write, never administer.")),
        None => Err(AppError::invalid("Pick a scope: read or write.")),
    }
}

pub fn check_lifetime(minutes: Option<u32>) -> Result<u32, AppError> {
    let minutes = minutes.unwrap_or(LIFETIME_DEFAULT_MINUTES);
    if (1..=LIFETIME_MAX_MINUTES).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(AppError::invalid(format!("A minted token lives 1 to {LIFETIME_MAX_MINUTES} minutes.")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_values() {
        assert!(glob_match("refs/heads/*", "refs/heads/main"));
        assert!(glob_match("refs/heads/*", "refs/heads/"));
        assert!(!glob_match("refs/heads/*", "refs/tags/v1"));
        assert!(glob_match("acme/*", "acme/backend"));
        assert!(!glob_match("acme/*", "acmeevil/backend"));
        assert!(glob_match("*/release-*-final", "x/release-1.2-final"));
        assert!(!glob_match("*/release-*-final", "x/release-1.2-finalx"));
        assert!(glob_match("main", "main") && !glob_match("main", "main2"));
        assert!(glob_match("a*a", "aa") && !glob_match("a*a", "a"));
    }

    #[test]
    fn a_policy_pins_its_source() {
        let c = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert!(check_conditions(&c(&[("repository", "acme/backend"), ("ref", "refs/heads/*")])).is_ok());
        assert!(check_conditions(&c(&[("namespace_path", "acme"), ("project_path", "acme/app")])).is_ok());
        assert!(check_conditions(&c(&[("repository_owner", "acme"), ("ref", "refs/heads/*")])).is_ok());
        assert!(check_conditions(&c(&[("project_path", "acme/*")])).is_err(), "a glob pin");
        assert!(check_conditions(&c(&[("repository", "acme*")])).is_err(), "a prefix pin");
        assert!(check_conditions(&c(&[("repository_id", "1*")])).is_err(), "an id prefix");
        assert!(
            check_conditions(&c(&[("repository", "acme/app"), ("repository_owner", "a*")])).is_err(),
            "every source condition is exact, not just one"
        );
        assert!(check_conditions(&c(&[("ref", "refs/heads/main")])).is_err(), "no source");
        assert!(check_conditions(&c(&[("repository", "*")])).is_err(), "pins nothing");
        assert!(check_conditions(&c(&[("repository", "*/backend")])).is_err());
        assert_eq!(
            parse_conditions("repository = acme/backend\n\nref=refs/heads/*\n").unwrap(),
            c(&[("repository", "acme/backend"), ("ref", "refs/heads/*")])
        );
        assert!(parse_conditions("repository acme").is_err());
    }

    #[test]
    fn source_claims_match_exactly_and_others_by_glob() {
        assert!(condition_matches("repository", "acme/app", "acme/app"));
        assert!(!condition_matches("repository", "acme*", "acme-evil/app"), "a stored glob pin matches nothing");
        assert!(!condition_matches("repository_id", "1*", "1234"));
        assert!(condition_matches("ref", "refs/heads/*", "refs/heads/main"));
    }
}
