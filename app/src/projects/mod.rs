//! Projects: the containers of cases and runs, named by a short upper-case key.

pub mod api;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::AppError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct Project {
    pub id: String,
    pub key: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "ssr", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
}

pub const KEY_RULE: &str = "A project key has 2 to 10 characters: a letter, then letters or digits (for example BD).";

/// Upper-cases and checks a project key: `[A-Z][A-Z0-9]{1,9}`.
pub fn normalize_key(input: &str) -> Result<String, AppError> {
    let key = input.trim().to_ascii_uppercase();
    let valid = (2..=10).contains(&key.len())
        && key.starts_with(|c: char| c.is_ascii_uppercase())
        && key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if valid {
        Ok(key)
    } else {
        Err(AppError::invalid(KEY_RULE))
    }
}

pub const NAME_MAX: usize = 100;

pub fn normalize_name(input: &str) -> Result<String, AppError> {
    let name = input.trim();
    if name.is_empty() {
        return Err(AppError::invalid("Enter a project name."));
    }
    if name.chars().count() > NAME_MAX || name.chars().any(char::is_control) {
        return Err(AppError::invalid(format!("A project name has at most {NAME_MAX} printable characters.")));
    }
    Ok(name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_upper_cased_and_checked() {
        assert_eq!(normalize_key(" bd ").unwrap(), "BD");
        assert_eq!(normalize_key("WEB2").unwrap(), "WEB2");
        for bad in ["", "B", "1AB", "B D", "ABCDEFGHIJK", "B-D", "ÄB"] {
            assert!(normalize_key(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(normalize_name(" Billing ").unwrap(), "Billing");
        assert!(normalize_name(" ").is_err());
        assert!(normalize_name(&"n".repeat(101)).is_err());
    }
}
