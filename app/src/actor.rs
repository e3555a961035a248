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
    credentials::{api_token, session, Credential, TokenKind},
    error::AppError,
    people::CurrentUser,
    policy::{self, Action, Projects, Reach},
    tokens::{top_scope, Prefix, Scope, TokenOwner},
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
/// `X-Forwarded-For` entry found walking from the right past trusted proxies. `ip:port`
/// and `[v6]:port` entries count as their address. An entry that is no address at all
/// (`unknown`, garbage, empty) ends the walk with `None`: the address is unknown and fails
/// every allowlist, and an address further left (which the client wrote) is never believed.
pub fn client_ip(peer: Option<IpAddr>, headers: &http::HeaderMap, trusted: &[ipnet::IpNet]) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    // Entries split as bytes and read one by one: an unreadable one (not UTF-8, say)
    // only matters if the walk from the right reaches it.
    let entries: Vec<&[u8]> =
        headers.get_all("x-forwarded-for").iter().flat_map(|value| value.as_bytes().split(|b| *b == b',')).collect();
    let mut nearest = peer;
    for entry in entries.into_iter().rev() {
        let ip = std::str::from_utf8(entry).ok().and_then(|e| forwarded_address(e.trim()))?;
        if !is_trusted(&ip) {
            return Some(ip);
        }
        nearest = ip;
    }
    Some(nearest)
}

/// One `X-Forwarded-For` entry: `ip`, `ip:port`, `[v6]` or `[v6]:port`.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .or_else(|_| {
            entry.strip_prefix('[').and_then(|e| e.strip_suffix(']')).ok_or(()).and_then(|e| e.parse().map_err(|_| ()))
        })
        .ok()
        .map(|ip: IpAddr| ip.to_canonical())
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

    #[test]
    fn forwarded_for_never_believes_past_what_it_cannot_read() {
        let trusted: Vec<ipnet::IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let at = |xff: &str| {
            let mut headers = http::HeaderMap::new();
            headers.insert("x-forwarded-for", xff.parse().unwrap());
            client_ip(Some(proxy), &headers, &trusted).map(|ip| ip.to_string())
        };
        // A proxy that appends ip:port: the appended entry is the client, never the left one.
        assert_eq!(at("10.1.2.3, 203.0.113.9:4711").as_deref(), Some("203.0.113.9"));
        assert_eq!(at("10.1.2.3, [2001:db8::1]:443").as_deref(), Some("2001:db8::1"));
        assert_eq!(at("10.1.2.3, [2001:db8::1]").as_deref(), Some("2001:db8::1"));
        // Unreadable entries end the walk: unknown, not the client's own claim.
        for xff in ["10.1.2.3, unknown", "10.1.2.3, garbage", "10.1.2.3, , 127.0.0.1", "10.1.2.3, _hidden"] {
            assert_eq!(at(xff), None, "{xff}");
        }
        // Trusted proxies are skipped from the right.
        assert_eq!(at("198.51.100.7, 127.0.0.1:80, 127.0.0.1").as_deref(), Some("198.51.100.7"));
        assert_eq!(at("::ffff:198.51.100.7").as_deref(), Some("198.51.100.7"));
        // Bytes that are not UTF-8 far on the left do not hide the address the proxy added.
        let mut headers = http::HeaderMap::new();
        headers.insert("x-forwarded-for", http::HeaderValue::from_bytes(b"\xff\xfe, 203.0.113.5").unwrap());
        assert_eq!(client_ip(Some(proxy), &headers, &trusted), Some("203.0.113.5".parse().unwrap()));
        headers.insert("x-forwarded-for", http::HeaderValue::from_bytes(b"203.0.113.5, \xff").unwrap());
        assert_eq!(client_ip(Some(proxy), &headers, &trusted), None, "reached: unknown");
        // A second header line (HAProxy adds one) is read after the first.
        let mut headers = http::HeaderMap::new();
        headers.append("x-forwarded-for", "10.1.2.3".parse().unwrap());
        headers.append("x-forwarded-for", "203.0.113.5".parse().unwrap());
        assert_eq!(client_ip(Some(proxy), &headers, &trusted), Some("203.0.113.5".parse().unwrap()));
        // A peer written as an IPv4-mapped IPv6 address is the proxy it maps to.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(client_ip(Some(mapped), &headers, &trusted), Some("203.0.113.5".parse().unwrap()));
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
    /// An ordinary API token, a SIEM key or a CI-minted token.
    pub kind: TokenKind,
    /// Whoever owns it may still manage tokens (the workspace always; a person while an
    /// owner or admin).
    pub creator_manages: bool,
    pub owner: TokenOwner,
    pub ai: AiSettings,
    /// Requests per minute this token may make (token, tenant or server default).
    pub rate_limit: u32,
    /// The highest scope this request's actions needed (`Actor::permit`), shared by the
    /// clones handlers take: what the request counts as in the token's usage.
    pub needed: Arc<AtomicU8>,
}

impl TokenPrincipal {
    pub fn top_scope(&self) -> Option<Scope> {
        top_scope(&self.scopes)
    }

    /// What the token carries, as the rules compare it.
    pub fn reach(&self) -> Reach {
        Reach::of_token(
            &self.scopes,
            match &self.projects {
                None => Projects::All,
                Some(p) => Projects::only(p.ids.iter().cloned()),
            },
            self.expires_at.map(OffsetDateTime::unix_timestamp),
            None,
            self.owner,
            self.ip_allowlist.clone(),
        )
    }

    /// The credential this token is (an API token, a SIEM key or a CI-minted token).
    pub fn credential(&self) -> Credential {
        api_token::of_token(&self.token_id, self.kind, self.reach(), self.creator_manages)
    }

    pub fn may_see_project(&self, project_id: &str) -> bool {
        self.projects.as_ref().is_none_or(|p| p.ids.iter().any(|id| id == project_id))
    }
}

#[derive(Clone, Debug)]
pub enum Actor {
    User(CurrentUser),
    Token(Box<TokenPrincipal>),
    /// The operator's command line (`qahub …`).
    System,
    /// The server acting on its own, by a rule and not at anyone's request: retiring a
    /// rotated token, revoking a reported leak, noting a use after expiry.
    Server,
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
            Actor::System | Actor::Server => None,
        }
    }

    /// The person behind the action: the user, or the token's creator.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Actor::User(u) => Some(&u.user_id),
            Actor::Token(t) => t.created_by.as_deref(),
            Actor::System | Actor::Server | Actor::TrustedCi { .. } => None,
        }
    }

    /// What the rules in `policy` see of this actor.
    pub fn credential(&self) -> Credential {
        match self {
            Actor::User(u) => session::of_user(u),
            Actor::Token(t) => t.credential(),
            Actor::System => Credential::Operator,
            Actor::Server => Credential::Server,
            Actor::TrustedCi { .. } => Credential::TrustPolicy,
        }
    }

    /// The first question of every domain function: may this actor set out to do
    /// `action` at all ([`policy::permit`])? The answer is the credential the action's
    /// own rule is asked with next. For a token it also notes the scope the request
    /// needed, which is what the request counts as in the token's usage.
    pub fn permit(&self, action: Action) -> Result<Credential, AppError> {
        let cred = self.credential();
        if let (Actor::Token(t), Credential::Token { .. } | Credential::CiToken { .. }) = (self, &cred) {
            t.needed.fetch_max(action.scope() as u8, Ordering::Relaxed);
        }
        policy::permit(&cred, action)?;
        Ok(cred)
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
            Actor::Server => Party { kind: "server".into(), id: None, label: Some("QA Hub (automatic)".into()) },
            Actor::TrustedCi { policy_id, policy_name, .. } => Party {
                kind: "trust_policy".into(),
                id: Some(policy_id.clone()),
                label: Some(format!("Trusted CI: {policy_name}")),
            },
        }
    }
}
