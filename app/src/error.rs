//! The one error type both doors speak. It serialises to the contract's
//! `{"error": {"code", "message"}}` and carries the HTTP status in its code.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

/// Machine-readable error codes, as in API.md's error table (plus the session-side ones).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    MissingToken,
    MalformedToken,
    InvalidToken,
    RevokedToken,
    ExpiredToken,
    DisabledToken,
    InsufficientScope,
    TenantSuspended,
    UserSuspended,
    IpNotAllowed,
    RestrictedEndpoint,
    ProjectRestricted,
    NotFound,
    RateLimited,
    /// A field failed validation (422).
    InvalidRequest,
    /// The request conflicts with what exists (409): a duplicate key, a final state.
    Conflict,
    /// No web session (401).
    Unauthenticated,
    /// Wrong email or password; the same answer for both (401).
    InvalidCredentials,
    /// The signed-in person's role does not allow it (403).
    Forbidden,
    /// `/setup` after the first run (409).
    AlreadySetUp,
    /// The request body could not be read (400).
    BadRequest,
    /// The body is larger than the endpoint accepts (413).
    PayloadTooLarge,
    /// The request took longer than the server allows (408).
    RequestTimeout,
    /// The request's headers are larger than the server accepts (431).
    HeadersTooLarge,
    MethodNotAllowed,
    /// An OIDC ID token failed a check: signature, issuer, audience, time, algorithm,
    /// or a replayed `jti` (401).
    OidcInvalid,
    /// A valid ID token that no active trust policy of exactly one workspace matches (403).
    OidcNoPolicy,
    Internal,
    Unavailable,
}

impl ErrorCode {
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            MissingToken | MalformedToken | InvalidToken | RevokedToken | ExpiredToken | DisabledToken
            | Unauthenticated | InvalidCredentials | OidcInvalid => 401,
            InsufficientScope | TenantSuspended | UserSuspended | IpNotAllowed | RestrictedEndpoint
            | ProjectRestricted | Forbidden | OidcNoPolicy => 403,
            NotFound => 404,
            Conflict | AlreadySetUp => 409,
            InvalidRequest => 422,
            BadRequest => 400,
            PayloadTooLarge => 413,
            RequestTimeout => 408,
            HeadersTooLarge => 431,
            MethodNotAllowed => 405,
            RateLimited => 429,
            Internal => 500,
            Unavailable => 503,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            MissingToken => "missing_token",
            MalformedToken => "malformed_token",
            InvalidToken => "invalid_token",
            RevokedToken => "revoked_token",
            ExpiredToken => "expired_token",
            DisabledToken => "disabled_token",
            InsufficientScope => "insufficient_scope",
            TenantSuspended => "tenant_suspended",
            UserSuspended => "user_suspended",
            IpNotAllowed => "ip_not_allowed",
            RestrictedEndpoint => "restricted_endpoint",
            ProjectRestricted => "project_restricted",
            NotFound => "not_found",
            RateLimited => "rate_limited",
            InvalidRequest => "invalid_request",
            Conflict => "conflict",
            Unauthenticated => "unauthenticated",
            InvalidCredentials => "invalid_credentials",
            Forbidden => "forbidden",
            AlreadySetUp => "already_set_up",
            BadRequest => "bad_request",
            PayloadTooLarge => "payload_too_large",
            RequestTimeout => "request_timeout",
            HeadersTooLarge => "headers_too_large",
            MethodNotAllowed => "method_not_allowed",
            OidcInvalid => "oidc_invalid",
            OidcNoPolicy => "oidc_no_policy",
            Internal => "internal",
            Unavailable => "unavailable",
        }
    }
}

/// An error safe to show: the message never holds a secret or an internal detail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds until a rate-limited caller may retry (sent as `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// For `insufficient_scope`: the scope the route needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), retry_after: None, scope: None }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found."))
    }
    pub fn unauthenticated() -> Self {
        Self::new(ErrorCode::Unauthenticated, "Please sign in.")
    }
    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            code: ErrorCode::RateLimited,
            message: format!("Too many attempts. Try again in {retry_after} s."),
            retry_after: Some(retry_after),
            scope: None,
        }
    }
    /// Something broke inside; the detail goes to the log, never to the caller.
    pub fn internal() -> Self {
        Self::new(ErrorCode::Internal, "Something went wrong on our side. Please try again.")
    }
    pub fn status(&self) -> u16 {
        self.code.status()
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(msg) | ServerFnErrorErr::Deserialization(msg) => {
                Self::new(ErrorCode::BadRequest, format!("The form could not be read: {msg}"))
            }
            ServerFnErrorErr::Request(_) | ServerFnErrorErr::Response(_) => Self::new(
                ErrorCode::Unavailable,
                "The server could not be reached. Check your connection and try again.",
            ),
            _ => Self::internal(),
        }
    }
}

#[cfg(feature = "ssr")]
impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        tracing::error!(error = %err, "database error");
        Self::internal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialise_as_the_contract_spells_them() {
        for code in [ErrorCode::MissingToken, ErrorCode::InvalidRequest, ErrorCode::AlreadySetUp] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn statuses_follow_the_error_table() {
        assert_eq!(ErrorCode::MalformedToken.status(), 401);
        assert_eq!(ErrorCode::ProjectRestricted.status(), 403);
        assert_eq!(ErrorCode::RateLimited.status(), 429);
        assert_eq!(ErrorCode::Conflict.status(), 409);
    }
}
