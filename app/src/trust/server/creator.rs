//! Whom a trust policy speaks for, as that credential stands now. A policy is a token
//! factory: at every exchange its creator's credential is read again (the creating token's
//! lifecycle, the person's membership and role) and asked, through
//! `policy::mint_through_policy`, whether it could mint the token itself.

use super::store::Creator;
use crate::{
    credentials::{session, Credential},
    db::Db,
    error::AppError,
    people::{server::store as people, AccountStatus},
    tokens::server::{auth, store as tokens},
};

/// Why a policy speaks for no one at the moment (the exchange's 403 says it).
pub struct Lapsed(pub String);

/// The credential of `creator` in `tenant_id` at `now`, or why it no longer counts.
pub async fn credential_now(
    db: &Db,
    tenant_id: &str,
    creator: &Creator,
    now: i64,
) -> Result<Result<Credential, Lapsed>, AppError> {
    let lapsed = |why: &str| Ok(Err(Lapsed(why.to_string())));
    match creator {
        Creator::Operator => Ok(Ok(Credential::Operator)),
        Creator::Unknown => lapsed("it was saved before policies recorded who made them"),
        Creator::Person(user_id) => match people::membership_of(db, user_id, tenant_id).await? {
            Some(m) if m.user_status == AccountStatus::Active => Ok(Ok(session::of_person(user_id, m.user.role))),
            Some(_) => lapsed("the person who saved it is suspended"),
            None => lapsed("the person who saved it is no longer a member"),
        },
        Creator::Token(token_id) => {
            let Some(row) = tokens::find(db, tenant_id, token_id).await? else {
                return lapsed("the token that saved it is gone");
            };
            let Some(auth_row) = tokens::find_for_auth(db, row.prefix.as_str(), "").await? else {
                return lapsed("the token that saved it is gone");
            };
            let projects = if auth_row.token.all_projects {
                None
            } else {
                Some(tokens::project_keys(db, &[token_id.as_str()]).await?.into_iter().map(|(_, id, _)| id).collect())
            };
            Ok(auth::credential_of(&auth_row, projects, now).map_err(|why| {
                let why = match why {
                    auth::Unusable::Revoked | auth::Unusable::Retired => {
                        "the token that saved it was revoked or rotated away"
                    }
                    auth::Unusable::Expired => "the token that saved it has expired",
                    auth::Unusable::Disabled => "the token that saved it is disabled",
                    auth::Unusable::TenantSuspended => "the workspace is suspended",
                    auth::Unusable::OwnerGone => "the person who owns the token that saved it is suspended or gone",
                };
                Lapsed(why.to_string())
            }))
        }
    }
}
