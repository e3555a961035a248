//! API tokens: the types both doors share (scopes, expiry choices, the create request,
//! the summary) and their validation. Generation, hashing, SQL and the lifecycle rules
//! are in `server`.

pub mod api;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::error::AppError;

/// What a token may do. `write` implies `read`, `admin` implies both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s.trim().to_ascii_lowercase())
    }

    /// This scope and every scope it implies, lowest first.
    pub fn closure(self) -> Vec<Scope> {
        Self::ALL.into_iter().filter(|s| *s <= self).collect()
    }
}

/// The highest of a set of scopes, and the full set it grants.
pub fn normalize_scopes(scopes: &[Scope]) -> Result<Vec<Scope>, AppError> {
    scopes
        .iter()
        .max()
        .map(|top| top.closure())
        .ok_or_else(|| AppError::invalid("Choose at least one scope: read, write or admin."))
}

pub fn top_scope(scopes: &[Scope]) -> Option<Scope> {
    scopes.iter().max().copied()
}

/// The expiry choices offered when creating a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum ExpiresIn {
    #[serde(rename = "never")]
    Never,
    #[serde(rename = "30d")]
    Days30,
    #[serde(rename = "90d")]
    Days90,
}

impl ExpiresIn {
    pub fn as_str(self) -> &'static str {
        match self {
            ExpiresIn::Never => "never",
            ExpiresIn::Days30 => "30d",
            ExpiresIn::Days90 => "90d",
        }
    }

    pub fn duration(self) -> Option<Duration> {
        match self {
            ExpiresIn::Never => None,
            ExpiresIn::Days30 => Some(Duration::days(30)),
            ExpiresIn::Days90 => Some(Duration::days(90)),
        }
    }
}

/// How a token's expiry was chosen, as the create form offers it and the token keeps it
/// (`expiry_policy`): a rotation gives the new token the same choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpiryChoice {
    Never,
    Days30,
    Days90,
    /// An explicit date (`expires_at`).
    Custom,
}

impl ExpiryChoice {
    pub const ALL: [ExpiryChoice; 4] =
        [ExpiryChoice::Never, ExpiryChoice::Days30, ExpiryChoice::Days90, ExpiryChoice::Custom];

    pub fn as_str(self) -> &'static str {
        match self {
            ExpiryChoice::Never => ExpiresIn::Never.as_str(),
            ExpiryChoice::Days30 => ExpiresIn::Days30.as_str(),
            ExpiryChoice::Days90 => ExpiresIn::Days90.as_str(),
            ExpiryChoice::Custom => "custom",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The fixed lifetime, for the choices that have one.
    pub fn fixed(self) -> Option<ExpiresIn> {
        match self {
            ExpiryChoice::Never => Some(ExpiresIn::Never),
            ExpiryChoice::Days30 => Some(ExpiresIn::Days30),
            ExpiryChoice::Days90 => Some(ExpiresIn::Days90),
            ExpiryChoice::Custom => None,
        }
    }
}

impl From<Expiry> for ExpiryChoice {
    fn from(expiry: Expiry) -> Self {
        match expiry {
            Expiry::In(ExpiresIn::Never) => ExpiryChoice::Never,
            Expiry::In(ExpiresIn::Days30) => ExpiryChoice::Days30,
            Expiry::In(ExpiresIn::Days90) => ExpiryChoice::Days90,
            Expiry::At(_) => ExpiryChoice::Custom,
        }
    }
}

/// How a token's expiry is chosen: a fixed lifetime, or an explicit moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    In(ExpiresIn),
    At(OffsetDateTime),
}

impl Expiry {
    /// From the request's `expires_in` / `expires_at` (at most one; neither means never).
    pub fn from_request(expires_in: Option<ExpiresIn>, expires_at: Option<OffsetDateTime>) -> Result<Self, AppError> {
        match (expires_in, expires_at) {
            (Some(_), Some(_)) => Err(AppError::invalid("Give either expires_in or expires_at, not both.")),
            (Some(choice), None) => Ok(Expiry::In(choice)),
            (None, Some(at)) => Ok(Expiry::At(at)),
            (None, None) => Ok(Expiry::In(ExpiresIn::Never)),
        }
    }

    /// The expiry moment for a token created at `now`; an explicit one must be in the future.
    pub fn resolve(self, now: OffsetDateTime) -> Result<Option<OffsetDateTime>, AppError> {
        match self {
            Expiry::In(choice) => Ok(choice.duration().map(|d| now + d)),
            Expiry::At(at) if at > now => Ok(Some(at)),
            Expiry::At(_) => Err(AppError::invalid("expires_at must be in the future.")),
        }
    }
}

/// A token's public prefix (8 characters `[a-z0-9]`): what lists, logs and the audit
/// log show, always in its masked form `qh_<prefix>_…`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Prefix(String);

impl Prefix {
    /// A prefix read back from the database, where only generated (valid) ones are written.
    pub fn from_stored(s: String) -> Self {
        Prefix(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `qh_<prefix>_…`: how a token is named anywhere but its one-time reveal.
    pub fn masked(&self) -> String {
        masked(&self.0)
    }
}

/// `qh_<prefix>_…` for a prefix string.
pub fn masked(prefix: &str) -> String {
    format!("qh_{prefix}_…")
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The status column of a token row. What a token *is* right now (`TokenStatus`) also
/// depends on its expiry and a rotation's retirement, against the clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Disabled,
    Revoked,
}

impl TokenState {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Active => "active",
            TokenState::Disabled => "disabled",
            TokenState::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [TokenState::Active, TokenState::Disabled, TokenState::Revoked].into_iter().find(|t| t.as_str() == s)
    }

    /// What the token is at `now`: revoked beats a passed rotation window, which beats
    /// expiry, which beats disabled.
    pub fn status_at(self, expires_at: Option<i64>, retire_at: Option<i64>, now: i64) -> TokenStatus {
        match self {
            TokenState::Revoked => TokenStatus::Revoked,
            _ if retire_at.is_some_and(|at| at <= now) => TokenStatus::Revoked,
            _ if expires_at.is_some_and(|at| at <= now) => TokenStatus::Expired,
            TokenState::Disabled => TokenStatus::Disabled,
            TokenState::Active => TokenStatus::Active,
        }
    }
}

pub const NAME_MAX: usize = 100;

pub fn normalize_name(input: &str) -> Result<String, AppError> {
    let name = input.trim();
    if name.is_empty() {
        return Err(AppError::invalid("Enter a token name."));
    }
    if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(AppError::invalid(format!("A token name has at most {NAME_MAX} printable characters.")));
    }
    Ok(name.to_string())
}

/// `POST /api/v1/tokens` and the create dialog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreateToken {
    pub name: String,
    pub scopes: Vec<Scope>,
    /// `None`: every project of the tenant. Otherwise project keys.
    #[serde(default)]
    pub projects: Option<Vec<String>>,
    #[serde(default)]
    pub expires_in: Option<ExpiresIn>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<OffsetDateTime>,
    /// `workspace`: a service token, which keeps working when its creator is suspended
    /// or removed. Only people who manage the workspace (or a workspace admin token)
    /// may create one. Default `user`.
    #[serde(default)]
    pub owner: TokenOwner,
    /// CIDRs (or single addresses) the token may be used from, checked together with
    /// the workspace's allowlist. Default: any address.
    #[serde(default)]
    pub ip_allowlist: Option<Vec<String>>,
}

/// Who a token belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum TokenOwner {
    /// The person who created it: it stops when they are suspended or leave.
    #[default]
    User,
    /// The workspace (a service token): it survives its creator.
    Workspace,
}

impl TokenOwner {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenOwner::User => "user",
            TokenOwner::Workspace => "workspace",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(TokenOwner::User),
            "workspace" => Some(TokenOwner::Workspace),
            _ => None,
        }
    }
}

/// `PATCH /api/v1/tokens/{id}`: every field optional; `projects: null` means all projects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UpdateToken {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub scopes: Option<Vec<Scope>>,
    #[serde(default, with = "double_option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Vec<String>>))]
    pub projects: Option<Option<Vec<String>>>,
    #[serde(default)]
    pub expires_in: Option<ExpiresIn>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<OffsetDateTime>,
    /// Requests per minute for this token; `null` falls back to the tenant's default.
    #[serde(default, with = "double_option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<u32>))]
    pub rate_limit_per_minute: Option<Option<u32>>,
    /// Replaces the token's IP allowlist; `[]` clears it (any address). A token may
    /// narrow a list, never widen it.
    #[serde(default)]
    pub ip_allowlist: Option<Vec<String>>,
}

pub const RATE_LIMIT_MAX: u32 = 1_000_000;

/// Tells a missing field (no change) from an explicit `null` (all projects).
pub mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(v: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum TokenStatus {
    Active,
    Disabled,
    Expired,
    Revoked,
}

impl TokenStatus {
    pub const ALL: [TokenStatus; 4] =
        [TokenStatus::Active, TokenStatus::Disabled, TokenStatus::Expired, TokenStatus::Revoked];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Disabled => "disabled",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        }
    }
}

/// What lists and detail views show of a token. Never the secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TokenSummary {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    /// `None`: all projects. Otherwise the project keys.
    pub projects: Option<Vec<String>>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    /// The email of the person who created it.
    pub created_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<OffsetDateTime>,
    pub last_used_ip: Option<String>,
    pub status: TokenStatus,
    /// The token's own request limit per minute, if an admin set one.
    pub rate_limit_per_minute: Option<u32>,
    /// `user` (stops with its creator) or `workspace` (a service token).
    pub owner: TokenOwner,
    /// Least privilege: the lower scope this token's last 30 days of use fit in, when
    /// it is older than 30 days and made no request needing its top scope.
    pub suggested_scope: Option<Scope>,
    /// Set while the token is being replaced by a rotation: the new token's id. The old
    /// one keeps working until the new one is first used (or `retire_at`).
    pub replaced_by: Option<String>,
    /// When a rotation window ends and the token stops working (at the latest 7 days
    /// after the rotation).
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "ssr", schema(value_type = Option<String>, format = DateTime))]
    pub retire_at: Option<OffsetDateTime>,
    /// The rotation retires this token at its replacement's first use (before `retire_at`).
    #[serde(default)]
    pub retire_on_first_use: bool,
    /// The addresses it may be used from (with the workspace's list); empty: any.
    #[serde(default)]
    pub ip_allowlist: Vec<String>,
    /// It lives longer than the workspace's maximum token lifetime allows (it was made
    /// before the maximum was set): shorten it or rotate it.
    #[serde(default)]
    pub beyond_max_lifetime: bool,
    /// A token a trust policy minted for a CI job: "acme/backend@refs/heads/main (run 123)".
    #[serde(default)]
    pub minted_for: Option<String>,
}

impl TokenSummary {
    /// Still working, but a rotation's new token is about to take over.
    pub fn retiring(&self) -> bool {
        self.replaced_by.is_some() && matches!(self.status, TokenStatus::Active | TokenStatus::Disabled)
    }
}

/// Requests of each kind: `read` (GET routes), `write` (changes to resources), `admin`
/// (tokens, tenant settings, the audit log). A request counts as the scope its route needs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageCounts {
    pub read: u64,
    pub write: u64,
    pub admin: u64,
}

impl UsageCounts {
    pub fn total(&self) -> u64 {
        self.read + self.write + self.admin
    }

    pub fn add(&mut self, other: UsageCounts) {
        self.read += other.read;
        self.write += other.write;
        self.admin += other.admin;
    }
}

/// One UTC day of a token's use.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UsageDay {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    #[serde(flatten)]
    pub counts: UsageCounts,
}

/// `GET /api/v1/tokens/{id}/usage`: the last 30 days, oldest first, every day present.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TokenUsage {
    pub token_id: String,
    pub days: Vec<UsageDay>,
    pub total: UsageCounts,
    /// As in the summary: the lower scope the use fits in, if any.
    pub suggested_scope: Option<Scope>,
}

/// The days usage is kept and shown for.
pub const USAGE_DAYS: i64 = 30;

/// Least privilege: for a token at least `USAGE_DAYS` old that was used in that window,
/// the lowest scope covering every request it made, when that is below its top scope.
pub fn least_privilege(
    scopes: &[Scope],
    created_at: OffsetDateTime,
    now: OffsetDateTime,
    used: UsageCounts,
) -> Option<Scope> {
    let top = top_scope(scopes)?;
    if now - created_at < Duration::days(USAGE_DAYS) || used.total() == 0 {
        return None;
    }
    let needed = if used.admin > 0 {
        Scope::Admin
    } else if used.write > 0 {
        Scope::Write
    } else {
        Scope::Read
    };
    (needed < top).then_some(needed)
}

/// An address a token was used from (`GET /api/v1/tokens/{id}/addresses`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct TokenAddress {
    pub ip: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub first_seen_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub last_seen_at: OffsetDateTime,
}

/// How many addresses the detail view and the API list.
pub const RECENT_ADDRESSES: i64 = 5;

/// What the token's detail view shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenDetail {
    pub token: TokenSummary,
    pub usage: TokenUsage,
    pub addresses: Vec<TokenAddress>,
    /// The masked new token, while this one is retiring.
    pub replaced_by_masked: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
}

impl TokenSummary {
    /// How lists show a token: `qh_<prefix>_…`.
    pub fn masked(&self) -> String {
        masked(&self.prefix)
    }
}

/// The answer to creation and rotation: the summary and, this once, the full token.
/// Its `Debug` never shows the token ([`Redacted`]): a log line or a panic message that
/// prints it prints no secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    #[serde(flatten)]
    pub summary: TokenSummary,
    pub token: String,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken").field("summary", &self.summary).field("token", &Redacted).finish()
    }
}

/// What `Debug` shows in place of a secret.
pub struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

#[cfg(test)]
mod redaction_tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug() {
        let summary: TokenSummary = serde_json::from_value(serde_json::json!({
            "id": "t1", "name": "ci", "prefix": "abcd1234", "scopes": ["read"], "projects": null,
            "created_at": "2026-12-02T00:00:00Z", "created_by": null, "expires_at": null, "last_used_at": null,
            "last_used_ip": null, "status": "active", "rate_limit_per_minute": null, "owner": "user",
            "suggested_scope": null, "replaced_by": null, "retire_at": null, "retire_on_first_use": false,
            "ip_allowlist": [], "beyond_max_lifetime": false, "minted_for": null
        }))
        .unwrap();
        let secret = "qh_abcd1234_SECRETSECRETSECRETSECRETSECRETSECRETSECR";
        let created = CreatedToken { summary, token: secret.into() };
        let shown = format!("{created:?} {created:#?}");
        assert!(!shown.contains("SECRETSECRET") && shown.contains("[redacted]"), "{shown}");
        let minted = crate::trust::OidcToken {
            token: secret.into(),
            expires_at: time::OffsetDateTime::UNIX_EPOCH,
            projects: None,
            scopes: vec![],
            policy_id: "p".into(),
        };
        assert!(!format!("{minted:?}").contains("SECRETSECRET"));
        let exchange =
            crate::trust::OidcExchange { id_token: "eyJhbGciOiJSUzI1NiJ9.SECRETCLAIMS.sig".into(), workspace: None };
        assert!(!format!("{exchange:?}").contains("SECRETCLAIMS"));
    }
}

/// What happens to the old token when one is rotated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub enum RetireOld {
    /// Keeps working until the new token is first used.
    #[default]
    #[serde(rename = "until_first_use")]
    UntilFirstUse,
    #[serde(rename = "now")]
    Now,
    #[serde(rename = "1h")]
    OneHour,
    #[serde(rename = "24h")]
    OneDay,
}

impl RetireOld {
    pub fn window(self) -> Option<Duration> {
        match self {
            RetireOld::OneHour => Some(Duration::hours(1)),
            RetireOld::OneDay => Some(Duration::hours(24)),
            RetireOld::UntilFirstUse | RetireOld::Now => None,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct RotateToken {
    #[serde(default)]
    pub old_token: RetireOld,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_imply_the_lower_ones() {
        assert_eq!(normalize_scopes(&[Scope::Write]).unwrap(), vec![Scope::Read, Scope::Write]);
        assert_eq!(normalize_scopes(&[Scope::Read, Scope::Admin]).unwrap(), Scope::ALL.to_vec());
        assert!(normalize_scopes(&[]).is_err());
        assert_eq!(Scope::parse(" WRITE "), Some(Scope::Write));
        assert_eq!(Scope::parse("root"), None);
    }

    #[test]
    fn expiry_choices_resolve() {
        let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        assert_eq!(Expiry::In(ExpiresIn::Never).resolve(now).unwrap(), None);
        assert_eq!(Expiry::In(ExpiresIn::Days30).resolve(now).unwrap(), Some(now + Duration::days(30)));
        assert!(Expiry::At(now - Duration::seconds(1)).resolve(now).is_err());
        assert!(Expiry::from_request(Some(ExpiresIn::Days90), Some(now)).is_err());
        assert_eq!(Expiry::from_request(None, None).unwrap(), Expiry::In(ExpiresIn::Never));
    }

    #[test]
    fn create_requests_parse_as_the_contract_says() {
        let req: CreateToken =
            serde_json::from_str(r#"{"name":"CI","scopes":["read","write"],"projects":null,"expires_in":"30d"}"#)
                .unwrap();
        assert_eq!(req.expires_in, Some(ExpiresIn::Days30));
        assert!(serde_json::from_str::<CreateToken>(r#"{"name":"x","scopes":["root"]}"#).is_err());
        let patch: UpdateToken = serde_json::from_str(r#"{"projects":null}"#).unwrap();
        assert_eq!(patch.projects, Some(None));
        let patch: UpdateToken = serde_json::from_str(r#"{"name":"n"}"#).unwrap();
        assert_eq!(patch.projects, None);
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(normalize_name("  CI  ").unwrap(), "CI");
        assert!(normalize_name("").is_err());
        assert!(normalize_name(&"x".repeat(101)).is_err());
    }
}

/// The create dialog's fields, as a browser form sends them. `into_request` turns them
/// into the one `CreateToken` that the API takes too.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateTokenForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub scopes: Vec<Scope>,
    /// `all` or `specific`.
    #[serde(default)]
    pub project_access: String,
    #[serde(default)]
    pub projects: Vec<String>,
    /// `never`, `30d`, `90d` or `custom`.
    #[serde(default)]
    pub expiration: String,
    /// `YYYY-MM-DD`, for `custom`: the token works until the end of that day (UTC).
    #[serde(default)]
    pub expires_on: String,
    /// `user` (default) or `workspace`.
    #[serde(default)]
    pub owner: String,
    /// CIDRs separated by commas or new lines; empty: any address.
    #[serde(default)]
    pub ip_allowlist: String,
}

/// A typed list of CIDRs (commas or new lines) as the API takes it.
pub fn split_list(text: &str) -> Vec<String> {
    text.split(['\n', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

impl CreateTokenForm {
    pub fn into_request(self) -> Result<CreateToken, AppError> {
        let projects = match self.project_access.as_str() {
            "" | "all" => None,
            "specific" if self.projects.is_empty() => {
                return Err(AppError::invalid("Pick at least one project, or choose All projects."));
            }
            "specific" => Some(self.projects),
            other => return Err(AppError::invalid(format!("Unknown project access {other:?}."))),
        };
        let choice = match self.expiration.as_str() {
            "" => ExpiryChoice::Never,
            other => {
                ExpiryChoice::parse(other).ok_or_else(|| AppError::invalid(format!("Unknown expiration {other:?}.")))?
            }
        };
        let (expires_in, expires_at) = match choice.fixed() {
            Some(fixed) => (Some(fixed), None),
            None => {
                let format = time::macros::format_description!("[year]-[month]-[day]");
                let date = time::Date::parse(self.expires_on.trim(), &format)
                    .map_err(|_| AppError::invalid("Pick an expiry date."))?;
                let end_of_day = date.with_hms(23, 59, 59).expect("valid time").assume_utc();
                (None, Some(end_of_day))
            }
        };
        let owner = match self.owner.as_str() {
            "" | "user" => TokenOwner::User,
            "workspace" => TokenOwner::Workspace,
            other => return Err(AppError::invalid(format!("Unknown owner {other:?}."))),
        };
        let ip_allowlist = Some(split_list(&self.ip_allowlist)).filter(|l| !l.is_empty());
        Ok(CreateToken { name: self.name, scopes: self.scopes, projects, expires_in, expires_at, owner, ip_allowlist })
    }
}

/// One page of the tokens list, with the server's clock so relative times render the
/// same on the server and in the browser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenPage {
    pub tokens: Vec<TokenSummary>,
    pub next_cursor: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub now: OffsetDateTime,
}

/// "just now", "5 min ago", "3 h ago", "12 days ago".
pub fn relative_time(then: OffsetDateTime, now: OffsetDateTime) -> String {
    let secs = (now - then).whole_seconds().max(0);
    match secs {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", secs / 60),
        3600..=86_399 => format!("{} h ago", secs / 3600),
        _ => match secs / 86_400 {
            1 => "1 day ago".into(),
            days => format!("{days} days ago"),
        },
    }
}

/// Expires within a week (and has not yet).
pub fn expires_soon(expires_at: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    expires_at.is_some_and(|at| at > now && at - now <= Duration::days(7))
}

#[cfg(test)]
mod form_tests {
    use super::*;

    fn form(access: &str, projects: &[&str], expiration: &str, on: &str) -> CreateTokenForm {
        CreateTokenForm {
            name: "CI".into(),
            scopes: vec![Scope::Write],
            project_access: access.into(),
            projects: projects.iter().map(|p| p.to_string()).collect(),
            expiration: expiration.into(),
            expires_on: on.into(),
            owner: String::new(),
            ip_allowlist: String::new(),
        }
    }

    #[test]
    fn the_form_becomes_the_api_request() {
        let req = form("specific", &["BD"], "30d", "").into_request().unwrap();
        assert_eq!(req.projects, Some(vec!["BD".to_string()]));
        assert_eq!(req.expires_in, Some(ExpiresIn::Days30));
        let req = form("all", &["BD"], "never", "").into_request().unwrap();
        assert_eq!((req.projects, req.expires_in), (None, Some(ExpiresIn::Never)));
        let req = form("all", &[], "custom", "2031-02-03").into_request().unwrap();
        assert_eq!(req.expires_at.unwrap().to_string(), "2031-02-03 23:59:59.0 +00:00:00");
        assert!(form("specific", &[], "never", "").into_request().is_err());
        assert!(form("all", &[], "custom", "").into_request().is_err());
        assert!(form("all", &[], "7d", "").into_request().is_err());
    }

    #[test]
    fn relative_times_read_naturally() {
        let now = OffsetDateTime::from_unix_timestamp(1_000_000).unwrap();
        let ago = |s: i64| relative_time(now - Duration::seconds(s), now);
        assert_eq!(ago(5), "just now");
        assert_eq!(ago(300), "5 min ago");
        assert_eq!(ago(7200), "2 h ago");
        assert_eq!(ago(86_400), "1 day ago");
        assert_eq!(ago(3 * 86_400), "3 days ago");
        assert!(expires_soon(Some(now + Duration::days(6)), now));
        assert!(!expires_soon(Some(now + Duration::days(8)), now));
        assert!(!expires_soon(Some(now - Duration::days(1)), now));
    }
}

#[cfg(test)]
mod usage_tests {
    use super::*;

    fn used(read: u64, write: u64, admin: u64) -> UsageCounts {
        UsageCounts { read, write, admin }
    }

    #[test]
    fn least_privilege_suggests_the_scope_the_use_fits() {
        let now = OffsetDateTime::from_unix_timestamp(2_000_000_000).unwrap();
        let old = now - Duration::days(31);
        let admin = Scope::ALL.to_vec();
        let write = vec![Scope::Read, Scope::Write];
        assert_eq!(least_privilege(&write, old, now, used(5, 0, 0)), Some(Scope::Read));
        assert_eq!(least_privilege(&write, old, now, used(5, 1, 0)), None);
        assert_eq!(least_privilege(&admin, old, now, used(5, 0, 0)), Some(Scope::Read));
        assert_eq!(least_privilege(&admin, old, now, used(5, 2, 0)), Some(Scope::Write));
        assert_eq!(least_privilege(&admin, old, now, used(0, 0, 1)), None);
        assert_eq!(least_privilege(&[Scope::Read], old, now, used(9, 0, 0)), None);
        // Too young to judge, or not used at all: no hint.
        assert_eq!(least_privilege(&write, now - Duration::days(29), now, used(5, 0, 0)), None);
        assert_eq!(least_privilege(&write, old, now, used(0, 0, 0)), None);
    }

    #[test]
    fn the_form_chooses_the_owner() {
        let mut form = CreateTokenForm { name: "x".into(), scopes: vec![Scope::Read], ..Default::default() };
        assert_eq!(form.clone().into_request().unwrap().owner, TokenOwner::User);
        form.owner = "workspace".into();
        assert_eq!(form.clone().into_request().unwrap().owner, TokenOwner::Workspace);
        form.owner = "robot".into();
        assert!(form.into_request().is_err());
    }
}
