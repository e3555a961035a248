//! Who is acting, and from where: a signed-in person (pages) or an API token (`/api/v1`).
//! Both doors hand one of these to the same domain functions.

use std::net::IpAddr;

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

#[derive(Clone, Debug)]
pub enum Actor {
    User(CurrentUser),
    Token(Box<TokenPrincipal>),
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
