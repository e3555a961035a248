//! The audit log: who did what to which thing, from where. Entries are written in the
//! same transaction as the change they record.

pub mod api;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Every action the audit log records. The filter on the audit page offers `ALL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditAction {
    TokenCreated,
    TokenRenamed,
    TokenUpdated,
    TokenScopeReduced,
    TokenDisabled,
    TokenEnabled,
    TokenRevoked,
    TokenRotated,
    TokenLeaked,
    TokenUsedAfterExpiry,
    TokenNewIp,
    ProjectCreated,
    ProjectRenamed,
    ProjectDeleted,
    UserLogin,
    UserLoginFailed,
    UserSuspended,
    UserReactivated,
    TenantCreated,
    TenantSettingsChanged,
    TenantHostAdded,
    TenantHostRemoved,
    TrustPolicyCreated,
    TrustPolicyUpdated,
    TrustPolicyDisabled,
    TrustPolicyEnabled,
    TrustPolicyDeleted,
    TokenMintedOidc,
}

impl AuditAction {
    pub const ALL: [AuditAction; 28] = [
        AuditAction::TokenCreated,
        AuditAction::TokenRenamed,
        AuditAction::TokenUpdated,
        AuditAction::TokenScopeReduced,
        AuditAction::TokenDisabled,
        AuditAction::TokenEnabled,
        AuditAction::TokenRevoked,
        AuditAction::TokenRotated,
        AuditAction::TokenLeaked,
        AuditAction::TokenUsedAfterExpiry,
        AuditAction::TokenNewIp,
        AuditAction::ProjectCreated,
        AuditAction::ProjectRenamed,
        AuditAction::ProjectDeleted,
        AuditAction::UserLogin,
        AuditAction::UserLoginFailed,
        AuditAction::UserSuspended,
        AuditAction::UserReactivated,
        AuditAction::TenantCreated,
        AuditAction::TenantSettingsChanged,
        AuditAction::TenantHostAdded,
        AuditAction::TenantHostRemoved,
        AuditAction::TrustPolicyCreated,
        AuditAction::TrustPolicyUpdated,
        AuditAction::TrustPolicyDisabled,
        AuditAction::TrustPolicyEnabled,
        AuditAction::TrustPolicyDeleted,
        AuditAction::TokenMintedOidc,
    ];

    pub fn as_str(self) -> &'static str {
        use AuditAction::*;
        match self {
            TokenCreated => "token.created",
            TokenRenamed => "token.renamed",
            TokenUpdated => "token.updated",
            TokenScopeReduced => "token.scope_reduced",
            TokenDisabled => "token.disabled",
            TokenEnabled => "token.enabled",
            TokenRevoked => "token.revoked",
            TokenRotated => "token.rotated",
            TokenLeaked => "token.leaked",
            TokenUsedAfterExpiry => "token.used_after_expiry",
            TokenNewIp => "token.new_ip",
            ProjectCreated => "project.created",
            ProjectRenamed => "project.renamed",
            ProjectDeleted => "project.deleted",
            UserLogin => "user.login",
            UserLoginFailed => "user.login_failed",
            UserSuspended => "user.suspended",
            UserReactivated => "user.reactivated",
            TenantCreated => "tenant.created",
            TenantSettingsChanged => "tenant.settings_changed",
            TenantHostAdded => "tenant.host_added",
            TenantHostRemoved => "tenant.host_removed",
            TrustPolicyCreated => "trust_policy.created",
            TrustPolicyUpdated => "trust_policy.updated",
            TrustPolicyDisabled => "trust_policy.disabled",
            TrustPolicyEnabled => "trust_policy.enabled",
            TrustPolicyDeleted => "trust_policy.deleted",
            TokenMintedOidc => "token.minted_oidc",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::AuditAction;

    #[test]
    fn every_action_round_trips_and_is_listed_once() {
        for (i, action) in AuditAction::ALL.iter().enumerate() {
            assert_eq!(AuditAction::parse(action.as_str()), Some(*action));
            assert!(!AuditAction::ALL[..i].contains(action), "{action} listed twice");
        }
        assert_eq!(AuditAction::parse("token.nonsense"), None);
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Party {
    /// `user`, `token`, `system`; for targets `token`, `project`, `user`, `tenant`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
    /// An email, or `qh_<prefix>_…` for a token: never a secret.
    pub label: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    pub action: String,
    pub actor: Party,
    pub target: Option<Party>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    #[cfg_attr(feature = "ssr", schema(value_type = Option<Object>))]
    pub details: Option<serde_json::Value>,
}
