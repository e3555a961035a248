//! Every kind of credential that can act in QA Hub, one module each, joined in one enum
//! that the rules in `policy` match on. A new kind is a new variant here: the compiler
//! then names every rule that has not decided what it may do.
//!
//! - [`session`]: a person signed in on the pages;
//! - [`api_token`]: an API token, person- or workspace-owned (`/api/v1`);
//! - [`siem_key`]: a `SIEM-LOG-ONLY` key, which reads the audit log and nothing else;
//! - [`ci_token`]: a token a trust policy minted for one CI job (Trusted CI);
//! - [`operator`]: the operator's command line, and the server acting on its own.

pub mod api_token;
pub mod ci_token;
pub mod operator;
pub mod session;
pub mod siem_key;

use crate::{
    error::{AppError, ErrorCode},
    people::Role,
    policy::{Projects, Reach},
    tokens::Scope,
};

pub use api_token::TokenKind;

/// The acting credential, as far as permissions go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A signed-in person (the pages): [`session`].
    Person { user_id: String, role: Role },
    /// An API token (`/api/v1`): [`api_token`]. `reach.owner` says whether it is a
    /// person's or the workspace's.
    Token {
        id: String,
        reach: Reach,
        /// The token's creator may still manage tokens (always true for workspace tokens).
        creator_manages: bool,
    },
    /// A `SIEM-LOG-ONLY` key: [`siem_key`]. Reads the audit log of its projects.
    SiemKey { id: String, projects: Projects },
    /// A token a trust policy minted for a CI job: [`ci_token`]. Reads and writes test
    /// data within its reach; manages nothing.
    CiToken { id: String, reach: Reach },
    /// The operator's command line (`qahub …`): [`operator`].
    Operator,
    /// The server acting on its own by a rule already decided (retiring a rotated token,
    /// revoking a reported leak, noting a use after expiry): [`operator`]. It asks no rule
    /// for more, so every rule refuses it.
    Server,
    /// A trust policy minting the token its rule describes: [`ci_token`]. What it mints
    /// was decided by `policy::mint_through_policy` for the policy's creator; as a
    /// credential it may do nothing.
    TrustPolicy,
}

impl Credential {
    /// The most this credential may give a token it creates or changes; refused when it
    /// may not manage tokens at all.
    pub fn minting_reach(&self) -> Result<Reach, AppError> {
        match self {
            Credential::Operator => Ok(Reach::full()),
            Credential::Person { role, .. } if role.can_manage() => Ok(Reach::full()),
            Credential::Person { .. } => Err(AppError::forbidden("Only owners and admins can manage API tokens.")),
            Credential::SiemKey { .. } => Err(self.refusal_of_kind()),
            Credential::CiToken { .. } => Err(ci_token::refusal()),
            Credential::Server | Credential::TrustPolicy => Err(self.refusal_of_kind()),
            Credential::Token { reach, .. } if reach.scope < Scope::Admin => {
                Err(AppError::insufficient_scope(Scope::Admin))
            }
            Credential::Token { creator_manages: false, .. } => {
                Err(AppError::forbidden("The person who created this token can no longer manage API tokens."))
            }
            Credential::Token { reach, .. } => Ok(reach.clone()),
        }
    }

    /// The token's id, for a token of any kind.
    pub fn token_id(&self) -> Option<&str> {
        match self {
            Credential::Token { id, .. } | Credential::SiemKey { id, .. } | Credential::CiToken { id, .. } => Some(id),
            _ => None,
        }
    }

    /// The projects this credential reaches.
    pub fn projects(&self) -> &Projects {
        match self {
            Credential::Token { reach, .. } | Credential::CiToken { reach, .. } => &reach.projects,
            Credential::SiemKey { projects, .. } => projects,
            Credential::Person { .. } | Credential::Operator | Credential::Server | Credential::TrustPolicy => {
                &Projects::All
            }
        }
    }

    /// What a token of any kind carries: its top scope gates every request it makes.
    pub fn token_reach(&self) -> Option<&Reach> {
        match self {
            Credential::Token { reach, .. } | Credential::CiToken { reach, .. } => Some(reach),
            _ => None,
        }
    }

    /// An owner or admin person, or the operator: trusted with tenant-wide limits.
    pub fn is_manager_person(&self) -> bool {
        match self {
            Credential::Operator => true,
            Credential::Person { role, .. } => role.can_manage(),
            _ => false,
        }
    }

    /// The refusal a SIEM key, the server or a minting trust policy gets for anything
    /// beyond what its kind exists for.
    pub(crate) fn refusal_of_kind(&self) -> AppError {
        match self {
            Credential::SiemKey { .. } => siem_key::refusal(),
            _ => operator::nobody_asked(),
        }
    }
}

pub(crate) fn restricted(message: &str) -> AppError {
    AppError::new(ErrorCode::RestrictedEndpoint, message)
}
