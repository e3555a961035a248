//! Who may do what: one pure function per action, taking the acting credential's reach
//! and the target, answering allow or the contract's refusal. Every door (the
//! `/api/v1` handlers, the server functions and no-JS forms, the CLI) reaches these
//! through the domain functions; nothing else decides a permission.
//!
//! The rule behind the token actions: **no credential may bring any token into a state it
//! could not have created itself.** A credential's reach is its top scope, its projects,
//! its expiry and the owner kind it may mint; a token it changes must be within that reach
//! before and after the change.

use std::collections::BTreeSet;

use ipnet::IpNet;

pub use crate::credentials::Credential;
use crate::{
    error::{AppError, ErrorCode},
    people::Role,
    tokens::{Scope, TokenOwner},
};

/// Which projects a credential or a token reaches (project ids).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Projects {
    All,
    Only(BTreeSet<String>),
}

impl Projects {
    pub fn only<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Self {
        Projects::Only(ids.into_iter().map(Into::into).collect())
    }

    pub fn covers(&self, other: &Projects) -> bool {
        match (self, other) {
            (Projects::All, _) => true,
            (Projects::Only(_), Projects::All) => false,
            (Projects::Only(mine), Projects::Only(theirs)) => theirs.is_subset(mine),
        }
    }

    pub fn ids(&self) -> Option<&BTreeSet<String>> {
        match self {
            Projects::All => None,
            Projects::Only(ids) => Some(ids),
        }
    }
}

/// Which client addresses a token may be used from (besides the workspace's allowlist,
/// which every token of the workspace must pass too).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Addresses {
    #[default]
    Any,
    Only(Vec<IpNet>),
}

impl Addresses {
    /// An empty list means any address.
    pub fn from_list(nets: Vec<IpNet>) -> Self {
        if nets.is_empty() {
            Addresses::Any
        } else {
            Addresses::Only(nets)
        }
    }

    /// Every address `other` admits, `self` admits too.
    pub fn covers(&self, other: &Addresses) -> bool {
        match (self, other) {
            (Addresses::Any, _) => true,
            (Addresses::Only(_), Addresses::Any) => false,
            (Addresses::Only(mine), Addresses::Only(theirs)) => {
                theirs.iter().all(|net| mine.iter().any(|m| m.contains(net)))
            }
        }
    }
}

/// What a token carries, or the most a credential may hand out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    pub scope: Scope,
    pub projects: Projects,
    /// Unix seconds; `None`: never expires.
    pub expires_at: Option<i64>,
    /// `Workspace` reach may mint both kinds; `User` only person-owned tokens.
    pub owner: TokenOwner,
    /// Where the token may be used from.
    pub addresses: Addresses,
}

impl Reach {
    /// Everything: what owners, admins and the operator may hand out.
    pub fn full() -> Self {
        Reach {
            scope: Scope::Admin,
            projects: Projects::All,
            expires_at: None,
            owner: TokenOwner::Workspace,
            addresses: Addresses::Any,
        }
    }

    /// Why `self` does not cover `other`, or `None` when it does.
    pub fn excess(&self, other: &Reach) -> Option<AppError> {
        if other.scope > self.scope {
            return Some(AppError::insufficient_scope(other.scope));
        }
        if !self.projects.covers(&other.projects) {
            return Some(AppError::new(
                ErrorCode::ProjectRestricted,
                "A project token can only give tokens its own projects.",
            ));
        }
        match (self.expires_at, other.expires_at) {
            (Some(_), None) => return Some(refusal("A token cannot give a token a longer life than its own.")),
            (Some(mine), Some(theirs)) if theirs > mine => {
                return Some(refusal("A token cannot give a token a longer life than its own."))
            }
            _ => {}
        }
        if !self.addresses.covers(&other.addresses) {
            return Some(refusal(
                "A token limited to some addresses can only give tokens addresses within its own IP allowlist.",
            ));
        }
        if other.owner == TokenOwner::Workspace && self.owner != TokenOwner::Workspace {
            return Some(refusal(
                "A person's token cannot make or change a workspace token; sign in, or use a workspace admin token.",
            ));
        }
        None
    }

    pub fn covers(&self, other: &Reach) -> bool {
        self.excess(other).is_none()
    }

    /// What a token carries: its top scope, its projects, its owner kind, its address
    /// list, and its life — cut at `retire_at` when one is given: a trust policy's creator
    /// that a rotation replaced stops at `retire_at`, and nothing the policy mints may
    /// outlive that. A token acting during its rotation window, and a token being acted
    /// on, keep their own expiry (pass `None`): the window exists so the old token still
    /// does its job, revoking and disabling included.
    pub fn of_token(
        scopes: &[Scope],
        projects: Projects,
        expires_at: Option<i64>,
        retire_at: Option<i64>,
        owner: TokenOwner,
        allowlist: Vec<IpNet>,
    ) -> Self {
        Reach {
            scope: crate::tokens::top_scope(scopes).unwrap_or(Scope::Read),
            projects,
            expires_at: match (expires_at, retire_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            owner,
            addresses: Addresses::from_list(allowlist),
        }
    }
}

fn refusal(message: &str) -> AppError {
    AppError::new(ErrorCode::InsufficientScope, message)
}

/// What a request sets out to do: every door names one before anything else, through
/// [`permit`], and then asks the action's own rule about its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Reading projects, cases, runs and results.
    ReadTestData,
    /// Creating, changing and deleting projects, cases, runs and results; imports.
    WriteTestData,
    /// Listing, creating, changing and rotating API tokens ([`create_token`], [`edit_token`] …).
    ManageTokens,
    /// Reading the audit log ([`read_audit`]).
    ReadAudit,
    /// Reading or changing the workspace's settings ([`change_tenant`]).
    WorkspaceSettings,
    /// Trust policies (Trusted CI: [`manage_trust_policies`], [`mint_through_policy`]).
    ManageTrust,
    /// Suspending and reactivating people ([`manage_member`]).
    ManagePeople,
}

impl Action {
    /// The scope a token needs for it.
    pub fn scope(self) -> Scope {
        match self {
            Action::ReadTestData => Scope::Read,
            Action::WriteTestData => Scope::Write,
            Action::ManageTokens
            | Action::ReadAudit
            | Action::WorkspaceSettings
            | Action::ManageTrust
            | Action::ManagePeople => Scope::Admin,
        }
    }
}

/// May `cred` set out to do `action` at all? A token (API or CI-minted) needs the action's
/// scope; a SIEM key only reads the audit log; the server and a minting trust policy ask
/// for nothing. People and the operator pass: their roles are asked by the action's own
/// rule, with the target, next.
pub fn permit(cred: &Credential, action: Action) -> Result<(), AppError> {
    match cred {
        Credential::SiemKey { .. } if action == Action::ReadAudit => Ok(()),
        Credential::SiemKey { .. } | Credential::Server | Credential::TrustPolicy => Err(cred.refusal_of_kind()),
        Credential::Token { reach, .. } | Credential::CiToken { reach, .. } => {
            if reach.scope >= action.scope() {
                Ok(())
            } else {
                Err(AppError::insufficient_scope(action.scope()))
            }
        }
        Credential::Person { .. } | Credential::Operator => Ok(()),
    }
}

/// A token as the rules see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenFacts {
    pub id: String,
    pub reach: Reach,
    /// Its own requests-per-minute limit, if set.
    pub rate_limit: Option<u32>,
}

/// Whether a credential sees a token at all. A project credential sees only tokens
/// confined to its projects; anything else answers 404, like a missing token.
pub fn see_token(cred: &Credential, target: &Reach) -> bool {
    cred.projects().covers(&target.projects)
}

/// Creating a token (also the new token of a rotation).
pub fn create_token(cred: &Credential, new: &Reach) -> Result<(), AppError> {
    let mine = cred.minting_reach()?;
    mine.excess(new).map_or(Ok(()), Err)
}

/// A token's lifetime never exceeds the creating credential's: a later expiry is cut to
/// it (so two "30 days" a second apart still fit); "never" from an expiring token is refused.
pub fn bound_expiry(cred: &Credential, expires_at: Option<i64>) -> Result<Option<i64>, AppError> {
    let limit = cred.token_reach().and_then(|reach| reach.expires_at);
    match (limit, expires_at) {
        (Some(_), None) => Err(refusal("A token cannot create a token that outlives it.")),
        (Some(limit), Some(at)) => Ok(Some(at.min(limit))),
        (None, at) => Ok(at),
    }
}

/// Editing a token (name, scopes, projects, expiry, rate limit): the token must be within
/// the credential's reach before and after. Rate limits: a token never sets its own, and
/// sets others' only up to the tenant's ceiling; owner and admin people set any.
pub fn edit_token(cred: &Credential, before: &TokenFacts, after: &TokenFacts, ceiling: u32) -> Result<(), AppError> {
    let mine = cred.minting_reach()?;
    if let Some(why) = mine.excess(&before.reach).or_else(|| mine.excess(&after.reach)) {
        return Err(why);
    }
    if !cred.is_manager_person() && !before.reach.addresses.covers(&after.reach.addresses) {
        return Err(refusal(
            "A token may narrow a token's IP allowlist, never widen it; ask an owner or admin to widen it.",
        ));
    }
    if after.rate_limit != before.rate_limit && !cred.is_manager_person() {
        if cred.token_id() == Some(before.id.as_str()) {
            return Err(AppError::forbidden("A token cannot change its own limits."));
        }
        if after.rate_limit.is_none_or(|n| n > ceiling) {
            return Err(AppError::forbidden(format!(
                "A token may set a rate limit of at most {ceiling} per minute (the workspace's); ask an owner or admin for more."
            )));
        }
    }
    Ok(())
}

/// Disable, enable or revoke: the token must be within the credential's reach. A token
/// may always disable or revoke itself (it is within its own reach).
pub fn change_status(cred: &Credential, target: &TokenFacts) -> Result<(), AppError> {
    let mine = cred.minting_reach()?;
    mine.excess(&target.reach).map_or(Ok(()), Err)
}

/// Rotating: the credential must reach the old token and could create the new one.
pub fn rotate_token(cred: &Credential, old: &TokenFacts, new: &Reach) -> Result<(), AppError> {
    change_status(cred, old)?;
    create_token(cred, new)
}

/// The workspace's longest token lifetime, and the three things it does — each asked
/// here, so "N days" means the same seconds everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxLifetime {
    pub days: u32,
}

impl MaxLifetime {
    const DAY: i64 = 86_400;

    pub fn seconds(self) -> i64 {
        i64::from(self.days) * Self::DAY
    }

    /// Creating a token or giving one a new expiry: an expiry past the maximum, or
    /// never, is refused (422, naming the maximum).
    pub fn refuse_beyond(self, expires_at: Option<i64>, now: i64) -> Result<(), AppError> {
        if expires_at.is_none_or(|at| at > now + self.seconds()) {
            let days = self.days;
            return Err(AppError::invalid(format!(
                "This workspace's tokens live at most {days} days (its maximum token lifetime): choose an expiry within {days} days."
            )));
        }
        Ok(())
    }

    /// A rotation answers a leak, so it is never refused: the new token's expiry is cut
    /// to the maximum instead.
    pub fn cut(self, expires_at: Option<i64>, now: i64) -> i64 {
        expires_at.unwrap_or(i64::MAX).min(now + self.seconds())
    }

    /// A token made before the maximum that lives longer (flagged `beyond_max_lifetime`).
    pub fn exceeded_by(self, created_at: i64, expires_at: Option<i64>) -> bool {
        expires_at.is_none_or(|at| at - created_at > self.seconds())
    }
}

/// What of the audit log a credential reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditView {
    /// Every entry of the tenant.
    All,
    /// Only entries about these projects (and nothing tenant-wide).
    Projects(BTreeSet<String>),
}

/// Owners and admins, admin tokens and `SIEM-LOG-ONLY` keys read the log; a project
/// credential (SIEM key or not) reads only entries about its projects.
pub fn read_audit(cred: &Credential) -> Result<AuditView, AppError> {
    match cred {
        Credential::Operator | Credential::SiemKey { .. } => {}
        Credential::Person { role, .. } if role.can_manage() => {}
        Credential::Person { .. } => return Err(AppError::forbidden("Only owners and admins can read the audit log.")),
        Credential::Token { reach, .. } if reach.scope == Scope::Admin => {}
        Credential::Token { .. } | Credential::CiToken { .. } => {
            return Err(AppError::insufficient_scope(Scope::Admin))
        }
        Credential::Server | Credential::TrustPolicy => return Err(cred.refusal_of_kind()),
    }
    Ok(match cred.projects() {
        Projects::All => AuditView::All,
        Projects::Only(ids) => AuditView::Projects(ids.clone()),
    })
}

/// What a tenant-settings change touches.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantChange {
    pub ip_allowlist: bool,
    pub ai: bool,
    pub rate_limit: bool,
    pub hosts: bool,
    /// The longest token lifetime in days, before and after (`None`: no maximum).
    pub max_lifetime: Option<(Option<u32>, Option<u32>)>,
}

/// Tenant-wide changes need tenant-wide reach: an owner or admin person, or an admin
/// token for all projects. The default token rate limit is a limit on tokens, so only
/// people set it; host names are granted by the operator alone (`qahub tenant host`).
/// The longest token lifetime is an owner's: admins may not touch it, and a token may
/// only shorten it (never lengthen or remove it).
pub fn change_tenant(cred: &Credential, change: TenantChange) -> Result<(), AppError> {
    if change.hosts && *cred != Credential::Operator {
        return Err(AppError::forbidden(
            "Host names are granted by the server's operator (qahub tenant host add|remove).",
        ));
    }
    if let Some((before, after)) = change.max_lifetime {
        match cred {
            Credential::Person { role, .. } if *role != Role::Owner => {
                return Err(AppError::forbidden("Only owners set the workspace's longest token lifetime."));
            }
            Credential::Token { .. } if after.is_none_or(|a| before.is_some_and(|b| a > b)) => {
                return Err(AppError::forbidden(
                    "A token may only shorten the workspace's longest token lifetime; an owner can lengthen or remove it.",
                ));
            }
            _ => {}
        }
    }
    match cred {
        Credential::Operator => Ok(()),
        Credential::Person { role, .. } if role.can_manage() => Ok(()),
        Credential::Person { .. } => Err(AppError::forbidden("Only owners and admins can change workspace settings.")),
        Credential::Token { .. }
        | Credential::SiemKey { .. }
        | Credential::CiToken { .. }
        | Credential::Server
        | Credential::TrustPolicy => {
            let mine = cred.minting_reach()?;
            if mine.projects != Projects::All {
                return Err(AppError::new(
                    ErrorCode::ProjectRestricted,
                    "Workspace settings need a token for all projects.",
                ));
            }
            if change.rate_limit {
                return Err(AppError::forbidden("Only owners and admins change the workspace's token rate limit."));
            }
            Ok(())
        }
    }
}

/// Trust policies (Trusted CI): owners and admins, or an admin token for all projects.
/// A policy whose tokens reach every project only an owner makes (`every_project`).
pub fn manage_trust_policies(cred: &Credential, every_project: bool) -> Result<(), AppError> {
    match cred {
        Credential::Operator => return Ok(()),
        Credential::Person { role, .. } if !role.can_manage() => {
            return Err(AppError::forbidden("Only owners and admins manage trusted CI."));
        }
        Credential::Person { role, .. } => {
            if every_project && *role != Role::Owner {
                return Err(AppError::forbidden("Only an owner may let CI tokens reach every project; pick projects."));
            }
            return Ok(());
        }
        Credential::Token { .. }
        | Credential::SiemKey { .. }
        | Credential::CiToken { .. }
        | Credential::Server
        | Credential::TrustPolicy => {}
    }
    let mine = cred.minting_reach()?;
    if mine.projects != Projects::All {
        return Err(AppError::new(ErrorCode::ProjectRestricted, "Trusted CI needs a token for all projects."));
    }
    if every_project {
        return Err(AppError::forbidden(
            "Only an owner, signed in, may let CI tokens reach every project; pick projects.",
        ));
    }
    Ok(())
}

/// What a trust policy mints at `now`, for the credential it speaks for: its creator
/// (whoever last created, changed or enabled it), as that credential stands at `now`.
/// Saving a policy and every exchange through it ask this same question, so a policy
/// never gives more than its creator has, then or later:
/// - the credential manages trusted CI ([`manage_trust_policies`]);
/// - the minted token (`scope`, `projects`, workspace-owned, the creator's own address
///   list) is one the credential could create itself ([`create_token`]): a person's
///   token never makes a policy, a project token only for its projects, and so on;
/// - it lives `lifetime_secs`, cut to the creating token's own expiry ([`bound_expiry`]).
pub fn mint_through_policy(
    cred: &Credential,
    scope: Scope,
    projects: Projects,
    lifetime_secs: i64,
    now: i64,
) -> Result<Reach, AppError> {
    manage_trust_policies(cred, projects == Projects::All)?;
    let addresses = match cred {
        Credential::Token { reach, .. } => reach.addresses.clone(),
        _ => Addresses::Any,
    };
    let expires_at = bound_expiry(cred, Some(now + lifetime_secs))?;
    if expires_at.is_some_and(|at| at <= now) {
        return Err(refusal("The token that made this trust policy has expired."));
    }
    let minted = Reach { scope, projects, expires_at, owner: TokenOwner::Workspace, addresses };
    create_token(cred, &minted)?;
    Ok(minted)
}

/// Suspending or reactivating a person of the workspace.
pub fn manage_member(cred: &Credential, target_user: &str, target_role: Role) -> Result<(), AppError> {
    let role = match cred {
        Credential::Operator => return Ok(()),
        Credential::Person { user_id, role } if role.can_manage() => {
            if user_id == target_user {
                return Err(AppError::new(ErrorCode::Conflict, "You cannot suspend yourself."));
            }
            *role
        }
        _ => return Err(AppError::forbidden("Only owners and admins can suspend people.")),
    };
    if target_role == Role::Owner && role != Role::Owner {
        return Err(AppError::new(ErrorCode::Conflict, "Only an owner can suspend an owner."));
    }
    Ok(())
}

/// Renaming or deleting a project the credential sees: people who manage the workspace,
/// tokens with write scope (a project token only reaches its own projects).
pub fn edit_project(cred: &Credential) -> Result<(), AppError> {
    match cred {
        Credential::Operator => Ok(()),
        Credential::Person { role, .. } if role.can_manage() => Ok(()),
        Credential::Person { .. } => Err(AppError::forbidden("Only owners and admins can change projects.")),
        Credential::Token { reach, .. } | Credential::CiToken { reach, .. } if reach.scope < Scope::Write => {
            Err(AppError::insufficient_scope(Scope::Write))
        }
        Credential::Token { .. } | Credential::CiToken { .. } => Ok(()),
        Credential::SiemKey { .. } | Credential::Server | Credential::TrustPolicy => Err(cred.refusal_of_kind()),
    }
}

/// Creating a project: write scope and tenant-wide reach (a project token gets 403
/// `project_restricted`); people who manage the workspace.
pub fn create_project(cred: &Credential) -> Result<(), AppError> {
    match cred {
        Credential::Operator => Ok(()),
        Credential::Person { role, .. } if role.can_manage() => Ok(()),
        Credential::Person { .. } => Err(AppError::forbidden("Only owners and admins can create projects.")),
        Credential::Token { reach, .. } | Credential::CiToken { reach, .. } if reach.scope < Scope::Write => {
            Err(AppError::insufficient_scope(Scope::Write))
        }
        Credential::Token { reach, .. } | Credential::CiToken { reach, .. } if reach.projects != Projects::All => {
            Err(AppError::new(ErrorCode::ProjectRestricted, "A project token cannot create projects."))
        }
        Credential::Token { .. } | Credential::CiToken { .. } => Ok(()),
        Credential::SiemKey { .. } | Credential::Server | Credential::TrustPolicy => Err(cred.refusal_of_kind()),
    }
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
