//! A token a trust policy minted for one CI job (Trusted CI): workspace-owned, `read` or
//! `write`, short-lived, within the reach the policy's creator had at the exchange
//! (`policy::mint_through_policy`). It reads and writes test data; it manages no token,
//! policy, setting or person, whatever a later change to the rules would let its scope do.
//!
//! The policy itself, while it mints, acts as [`Credential::TrustPolicy`](super::Credential).

use super::Credential;
use crate::{error::AppError, policy::Reach, tokens::Scope};

pub fn of_token(id: &str, reach: Reach) -> Credential {
    Credential::CiToken { id: id.to_string(), reach }
}

/// A CI-minted token asking to manage anything: it never may (its scope is at most write,
/// so the refusal names the scope it would need).
pub fn refusal() -> AppError {
    AppError::insufficient_scope(Scope::Admin)
}
