//! An API token (`Authorization: Bearer qh_…`), and how a token's row becomes the
//! credential of its kind: an ordinary token, a SIEM key or a CI-minted token. The kind is
//! decided here once ([`TokenKind::of`]); the rules only ever see the variant.

use super::{ci_token, siem_key, Credential};
use crate::{people::Role, policy::Reach, tokens::TokenOwner};

/// What kind of credential a token is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// A token an owner, admin or token made in Settings → Developer → API Tokens.
    Api,
    /// A `SIEM-LOG-ONLY` key ([`siem_key`]).
    SiemKey,
    /// Minted by a trust policy for a CI job ([`ci_token`]).
    CiMinted,
}

impl TokenKind {
    /// The kind of a token named `name`, minted for a CI job or not.
    /// The SIEM name wins: a minted token renamed `SIEM-LOG-ONLY…` is restricted too.
    pub fn of(name: &str, minted_for_ci: bool) -> Self {
        if siem_key::is_siem_name(name) {
            TokenKind::SiemKey
        } else if minted_for_ci {
            TokenKind::CiMinted
        } else {
            TokenKind::Api
        }
    }
}

/// Whether the person behind a token may still manage tokens: a workspace token's owner
/// is the workspace itself, which always may; a person's token, while its creator is an
/// owner or admin (`creator_role`).
pub fn creator_manages(owner: TokenOwner, creator_role: Option<Role>) -> bool {
    match owner {
        TokenOwner::Workspace => true,
        TokenOwner::User => creator_role.is_some_and(Role::can_manage),
    }
}

/// The credential a token of `kind` is, with its `reach`.
pub fn of_token(id: &str, kind: TokenKind, reach: Reach, creator_manages: bool) -> Credential {
    match kind {
        TokenKind::Api => Credential::Token { id: id.to_string(), reach, creator_manages },
        TokenKind::SiemKey => Credential::SiemKey { id: id.to_string(), projects: reach.projects },
        TokenKind::CiMinted => ci_token::of_token(id, reach),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kind_comes_from_the_token_and_the_siem_name_wins() {
        assert_eq!(TokenKind::of("deploy bot", false), TokenKind::Api);
        assert_eq!(TokenKind::of("CI acme/app@main", true), TokenKind::CiMinted);
        assert_eq!(TokenKind::of("SIEM-LOG-ONLY splunk", false), TokenKind::SiemKey);
        // A minted token renamed to a SIEM name is restricted like any SIEM key.
        assert_eq!(TokenKind::of("SIEM-LOG-ONLY renamed", true), TokenKind::SiemKey);
        assert_eq!(TokenKind::of("siem-log-only lower case", false), TokenKind::Api, "the prefix is exact");
        // Whatever it carries, a SIEM key is only a SIEM key, and a CI token only a CI token.
        assert!(matches!(of_token("s", TokenKind::SiemKey, Reach::full(), true), Credential::SiemKey { .. }));
        assert!(matches!(of_token("c", TokenKind::CiMinted, Reach::full(), true), Credential::CiToken { .. }));
        assert!(matches!(
            of_token("t", TokenKind::Api, Reach::full(), false),
            Credential::Token { creator_manages: false, .. }
        ));
        assert!(creator_manages(TokenOwner::Workspace, None));
        assert!(!creator_manages(TokenOwner::User, Some(Role::Member)));
        assert!(creator_manages(TokenOwner::User, Some(Role::Admin)));
        assert!(!creator_manages(TokenOwner::User, None));
    }
}
