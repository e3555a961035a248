//! Who is acting, and from where: a signed-in person (pages) or an API token (`/api/v1`).
//! Both doors hand one of these to the same domain functions.

use crate::{
    audit::Party,
    people::{CurrentUser, Role},
    tokens::{server::auth::TokenPrincipal, Scope},
};

#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone, Debug)]
pub enum Actor {
    User(CurrentUser),
    Token(TokenPrincipal),
    /// The operator's command line.
    System,
}

impl Actor {
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Actor::User(u) => Some(&u.tenant_id),
            Actor::Token(t) => Some(&t.tenant_id),
            Actor::System => None,
        }
    }

    /// The person behind the action: the user, or the token's creator.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Actor::User(u) => Some(&u.user_id),
            Actor::Token(t) => t.created_by.as_deref(),
            Actor::System => None,
        }
    }

    /// The most a token created by this actor may carry. People: owners and admins
    /// may mint any scope, members none. Tokens: their own top scope, and only while
    /// the person who created them may still manage tokens.
    pub fn max_scope(&self) -> Option<Scope> {
        match self {
            Actor::User(u) => u.role.can_manage().then_some(Scope::Admin),
            Actor::Token(t) => t.owner_role.filter(|r| r.can_manage()).and(t.top_scope()),
            Actor::System => Some(Scope::Admin),
        }
    }

    /// `None`: every project of the tenant; otherwise only these project ids.
    pub fn project_ids(&self) -> Option<&[String]> {
        match self {
            Actor::Token(t) => t.projects.as_ref().map(|p| p.ids.as_slice()),
            _ => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        match self {
            Actor::User(u) => Some(u.role),
            Actor::Token(t) => t.owner_role,
            Actor::System => Some(Role::Owner),
        }
    }

    pub fn party(&self) -> Party {
        match self {
            Actor::User(u) => Party { kind: "user".into(), id: Some(u.user_id.clone()), label: Some(u.email.clone()) },
            Actor::Token(t) => {
                Party {
                    kind: "token".into(), id: Some(t.token_id.clone()), label: Some(format!("qh_{}_…", t.prefix))
                }
            }
            Actor::System => Party { kind: "system".into(), id: None, label: Some("qahub CLI".into()) },
        }
    }
}
