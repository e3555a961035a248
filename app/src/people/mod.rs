//! People: tenants, users, roles, sign-in sessions, and the first-run setup.
//! Types and validation here compile for both targets; `server` holds SQL, bcrypt and sessions.

pub mod api;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Member,
}

impl Role {
    /// Owners and admins manage the tenant: projects, tokens, settings.
    pub fn can_manage(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Result<Self, AppError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            other => Err(AppError::invalid(format!("Unknown role {other:?}: expected owner, admin or member."))),
        }
    }
}

/// The status of an account or a workspace, as stored (`ACTIVE` / `SUSPENDED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum AccountStatus {
    Active,
    Suspended,
}

impl AccountStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "ACTIVE",
            AccountStatus::Suspended => "SUSPENDED",
        }
    }

    /// Anything but `ACTIVE` counts as suspended: a status never blocks by accident of spelling.
    pub fn parse(s: &str) -> Self {
        if s == "ACTIVE" {
            AccountStatus::Active
        } else {
            AccountStatus::Suspended
        }
    }

    pub fn suspended(suspend: bool) -> Self {
        if suspend {
            AccountStatus::Suspended
        } else {
            AccountStatus::Active
        }
    }
}

/// The signed-in person, as the pages see them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    pub user_id: String,
    pub email: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub role: Role,
}

/// A person in the workspace, as the Members page lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub suspended: bool,
}

/// What suspending a person would do, shown before it is done.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SuspensionPreview {
    pub member: Member,
    /// Their own tokens in this workspace that work now and would stop.
    pub stopping: Vec<crate::tokens::TokenSummary>,
    /// Workspace (service) tokens they created, which keep working.
    pub surviving: usize,
    /// Whether the viewer may suspend them (and if not, why).
    pub refusal: Option<String>,
}

/// Trimmed, lower-cased, plausibly an address.
pub fn normalize_email(input: &str) -> Result<String, AppError> {
    let email = input.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(email)
    } else {
        Err(AppError::invalid("Enter a valid email address, like ada@example.com."))
    }
}

pub const PASSWORD_MIN_CHARS: usize = 8;
/// bcrypt reads at most 72 bytes; longer passwords are refused rather than cut.
pub const PASSWORD_MAX_BYTES: usize = 72;

pub fn validate_new_password(password: &str) -> Result<(), AppError> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(AppError::invalid(format!("The password must have at least {PASSWORD_MIN_CHARS} characters.")));
    }
    if password.len() > PASSWORD_MAX_BYTES {
        return Err(AppError::invalid(format!("The password must have at most {PASSWORD_MAX_BYTES} bytes.")));
    }
    Ok(())
}

pub const TENANT_NAME_MAX: usize = 100;

pub fn normalize_tenant_name(input: &str) -> Result<String, AppError> {
    let name = input.trim();
    if name.is_empty() {
        return Err(AppError::invalid("Enter a workspace name."));
    }
    if name.chars().count() > TENANT_NAME_MAX || name.chars().any(char::is_control) {
        return Err(AppError::invalid(format!(
            "The workspace name must be at most {TENANT_NAME_MAX} printable characters."
        )));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(normalize_email("  Ada@Example.COM ").unwrap(), "ada@example.com");
        for bad in ["", "ada", "@x", "ada@", "a b@x.y", "a@b@c"] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn passwords_between_8_chars_and_72_bytes() {
        assert!(validate_new_password("short").is_err());
        assert!(validate_new_password("long enough").is_ok());
        assert!(validate_new_password(&"x".repeat(72)).is_ok());
        assert!(validate_new_password(&"x".repeat(73)).is_err());
    }

    #[test]
    fn roles_parse_and_gate() {
        assert_eq!(Role::parse(" Admin ").unwrap(), Role::Admin);
        assert!(Role::parse("root").is_err());
        assert!(Role::Owner.can_manage() && Role::Admin.can_manage() && !Role::Member.can_manage());
    }

    #[test]
    fn tenant_names_are_trimmed_and_bounded() {
        assert_eq!(normalize_tenant_name("  Acme ").unwrap(), "Acme");
        assert!(normalize_tenant_name("   ").is_err());
        assert!(normalize_tenant_name(&"a".repeat(101)).is_err());
    }
}
