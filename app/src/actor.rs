//! Who is acting, and from where: a signed-in person (pages) or an API token (`/api/v1`).
//! Both doors hand one of these to the same domain functions.

use std::{
    net::IpAddr,
    sync::{
        atomic::{AtomicU8, Ordering},
        Arc,
    },
};

use time::OffsetDateTime;

use crate::{
    audit::Party,
    error::AppError,
    people::{CurrentUser, Role},
    policy::{Credential, Projects, Reach},
    tokens::{top_scope, Prefix, Scope, TokenOwner, SIEM_PREFIX},
};

#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// Address and user agent of a request, believing `X-Forwarded-For` only from
    /// trusted proxies.
    pub fn from_parts(parts: &http::request::Parts, trusted: &[ipnet::IpNet]) -> Self {
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        RequestMeta {
            ip: client_ip(peer, &parts.headers, trusted).map(|ip| ip.to_string()),
            user_agent: parts.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()).map(str::to_owned),
        }
    }
}

/// The client's address: the peer, or — only when the peer is a trusted proxy — the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
pub fn client_ip(peer: Option<IpAddr>, headers: &http::HeaderMap, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.iter().any(|net| net.contains(&peer)) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(forwarded.into_iter().rev().find(|ip| !trusted.iter().any(|net| net.contains(ip))).unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", "198.51.100.7, 10.0.0.2".parse().unwrap());
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(Some(proxy), &headers, &trusted), Some("198.51.100.7".parse().unwrap()));
        assert_eq!(client_ip(Some(stranger), &headers, &trusted), Some(stranger), "spoofed header ignored");
        assert_eq!(client_ip(Some(proxy), &headers, &[]), Some(proxy));
        assert_eq!(client_ip(Some(proxy), &http::HeaderMap::new(), &trusted), Some(proxy));
    }
}

/// The projects a project token may touch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProjectScope {
    pub ids: Vec<String>,
    pub keys: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AiSettings {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub quota_exhausted: bool,
}

/// An authenticated token, as handlers and domain functions see it.
#[derive(Clone, Debug)]
pub struct TokenPrincipal {
    pub token_id: String,
    pub tenant_id: String,
    pub tenant_name: String,
    pub tenant_status: String,
    pub prefix: Prefix,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub projects: Option<ProjectScope>,
    pub expires_at: Option<OffsetDateTime>,
    /// Unix seconds.
    pub created_at: i64,
    /// When a rotation replaced it: the moment it stops working.
    pub retire_at: Option<OffsetDateTime>,
    /// The token's own IP allowlist (empty: any address the workspace admits).
    pub ip_allowlist: Vec<ipnet::IpNet>,
    pub created_by: Option<String>,
    /// The creator's role, or `admin` for a workspace (service) token.
    pub owner_role: Option<Role>,
    pub owner: TokenOwner,
    pub ai: AiSettings,
    /// Requests per minute this token may make (token, tenant or server default).
    pub rate_limit: u32,
    /// The highest scope this request's route asked for (`require`), shared by the
    /// clones handlers take: what the request counts as in the token's usage.
    pub needed: Arc<AtomicU8>,
}

impl TokenPrincipal {
    pub fn top_scope(&self) -> Option<Scope> {
        top_scope(&self.scopes)
    }

    /// 403 `insufficient_scope` unless the token has `needed` (or a scope implying it).
    pub fn require(&self, needed: Scope) -> Result<(), AppError> {
        self.needed.fetch_max(needed as u8, Ordering::Relaxed);
        if self.top_scope().is_some_and(|top| top >= needed) {
            Ok(())
        } else {
            Err(AppError::insufficient_scope(needed))
        }
    }

    /// What the token carries, as the rules compare it.
    pub fn reach(&self) -> Reach {
        Reach {
            scope: self.top_scope().unwrap_or(Scope::Read),
            projects: match &self.projects {
                None => Projects::All,
                Some(p) => Projects::only(p.ids.iter().cloned()),
            },
            expires_at: self.expires_at.map(OffsetDateTime::unix_timestamp),
            owner: self.owner,
            addresses: crate::policy::Addresses::from_list(self.ip_allowlist.clone()),
        }
    }

    pub fn may_see_project(&self, project_id: &str) -> bool {
        self.projects.as_ref().is_none_or(|p| p.ids.iter().any(|id| id == project_id))
    }
}

#[derive(Clone, Debug)]
pub enum Actor {
    User(CurrentUser),
    Token(Box<TokenPrincipal>),
    /// The operator's command line.
    System,
    /// A trust policy minting a token for the CI job it matched (Trusted CI). It acts
    /// only in `tokens::server::lifecycle::mint_for_ci`: the policy was the rule.
    TrustedCi {
        tenant_id: String,
        policy_id: String,
        policy_name: String,
    },
}

impl Actor {
    pub fn tenant_id(&self) -> Option<&str> {
        match self {
            Actor::User(u) => Some(&u.tenant_id),
            Actor::Token(t) => Some(&t.tenant_id),
            Actor::TrustedCi { tenant_id, .. } => Some(tenant_id),
            Actor::System => None,
        }
    }

    /// The person behind the action: the user, or the token's creator.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Actor::User(u) => Some(&u.user_id),
            Actor::Token(t) => t.created_by.as_deref(),
            Actor::System | Actor::TrustedCi { .. } => None,
        }
    }

    /// What the rules in `policy` see of this actor.
    pub fn credential(&self) -> Credential {
        match self {
            Actor::User(u) => Credential::Person { user_id: u.user_id.clone(), role: u.role },
            Actor::Token(t) => Credential::Token {
                id: t.token_id.clone(),
                reach: t.reach(),
                siem: t.name.starts_with(SIEM_PREFIX),
                creator_manages: t.owner_role.is_some_and(Role::can_manage),
            },
            Actor::System => Credential::Operator,
            // It mints only what its policy says (no rule asks it for more); as a
            // credential it may do nothing.
            Actor::TrustedCi { .. } => Credential::Person { user_id: String::new(), role: Role::Member },
        }
    }

    /// `None`: every project of the tenant; otherwise only these project ids.
    pub fn project_ids(&self) -> Option<&[String]> {
        match self {
            Actor::Token(t) => t.projects.as_ref().map(|p| p.ids.as_slice()),
            _ => None,
        }
    }

    pub fn party(&self) -> Party {
        match self {
            Actor::User(u) => Party { kind: "user".into(), id: Some(u.user_id.clone()), label: Some(u.email.clone()) },
            Actor::Token(t) => {
                Party { kind: "token".into(), id: Some(t.token_id.clone()), label: Some(t.prefix.masked()) }
            }
            Actor::System => Party { kind: "system".into(), id: None, label: Some("qahub CLI".into()) },
            Actor::TrustedCi { policy_id, policy_name, .. } => Party {
                kind: "trust_policy".into(),
                id: Some(policy_id.clone()),
                label: Some(format!("Trusted CI: {policy_name}")),
            },
        }
    }
}
