//! `/settings/developer/api-tokens` and a token's own page. Every control is a plain HTML
//! form underneath (so the pages work without JavaScript); with JavaScript the same forms
//! become a dialog flow. `list` is the list and its rows, `dialogs` the create / reveal /
//! rename / rotate / revoke dialogs, `detail` the token's page with its chart; the
//! labels and the least-privilege hint they share are here.

mod detail;
mod dialogs;
mod list;

pub use detail::ApiTokenPage;
pub use list::ApiTokensPage;

use leptos::{ev, prelude::*};
use leptos_meta::Title;

use crate::{
    components::{form_error, FormError, Modal},
    projects::api::list_projects,
    settings::use_current_user,
    tokens::{
        api::{
            list_tokens, load_token_detail, ChangeTokenStatus, IssueToken, ReduceTokenScope, ReissueToken, RenameToken,
            LIST_URL,
        },
        expires_soon, relative_time, CreatedToken, ExpiryChoice, Scope, TokenOwner, TokenStatus, TokenSummary,
        TokenUsage, USAGE_DAYS,
    },
};

/// Set by the server when a plain form post (no JavaScript) created or rotated a token:
/// the page it renders shows the reveal dialog once.
#[derive(Clone, Debug)]
pub struct Revealed(pub CreatedToken);

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Dialog {
    Create,
    Revoke(String),
    Rotate(String),
    Rename(String),
}

impl Dialog {
    fn from_query(get: impl Fn(&str) -> Option<String>) -> Option<Self> {
        if get("create").is_some() {
            return Some(Dialog::Create);
        }
        let id = get("id")?;
        match get("dialog")?.as_str() {
            "revoke" => Some(Dialog::Revoke(id)),
            "rotate" => Some(Dialog::Rotate(id)),
            "rename" => Some(Dialog::Rename(id)),
            _ => None,
        }
    }
}

pub(super) fn date(t: time::OffsetDateTime) -> String {
    t.date().to_string()
}

/// `2026-11-23 14:05 UTC`
pub(super) fn date_time(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute())
}

/// "Retiring — last used from 203.0.113.7 at 2026-11-23 14:05 UTC"
pub(super) fn retiring_text(t: &TokenSummary) -> String {
    match (t.last_used_at, &t.last_used_ip) {
        (Some(at), Some(ip)) => format!("Retiring — last used from {ip} at {}", date_time(at)),
        (Some(at), None) => format!("Retiring — last used at {}", date_time(at)),
        (None, _) => "Retiring — never used".to_string(),
    }
}

pub(super) fn owner_label(t: &TokenSummary) -> String {
    if let Some(job) = &t.minted_for {
        return format!("Workspace (Trusted CI), minted for {job}");
    }
    match t.owner {
        TokenOwner::Workspace => "Workspace".to_string(),
        TokenOwner::User => t.created_by.clone().unwrap_or_else(|| "(removed person)".to_string()),
    }
}

/// "Only read requests in 30 days" and the one-click "Reduce to read".
#[component]
pub(super) fn LeastPrivilegeHint(
    t: TokenSummary,
    manager: bool,
    reduce: ServerAction<ReduceTokenScope>,
) -> impl IntoView {
    let Some(to) = t.suggested_scope else { return ().into_any() };
    let what = match to {
        Scope::Read => "Only read requests",
        _ => "No admin requests",
    };
    let label = format!("Reduce to {}", to.as_str());
    view! {
        <div class="hint least-privilege" role="note">
            {format!("{what} in {USAGE_DAYS} days.")}
            {manager.then(|| view! {
                <ActionForm action=reduce attr:class="inline-form">
                    <input type="hidden" name="id" value=t.id.clone() />
                    <input type="hidden" name="scope" value=to.as_str() />
                    <button type="submit" aria-label=format!("{label}: {}", t.name)>{label.clone()}</button>
                </ActionForm>
            })}
        </div>
    }
    .into_any()
}

pub(super) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
}

pub(super) fn status_label(status: TokenStatus) -> &'static str {
    match status {
        TokenStatus::Active => "Active",
        TokenStatus::Disabled => "Disabled",
        TokenStatus::Expired => "Expired",
        TokenStatus::Revoked => "Revoked",
    }
}

/// What the list page's parts share — the open dialog and the page's actions — provided
/// once by `ApiTokensPage` instead of being handed down through every component's props.
#[derive(Clone, Copy)]
pub(super) struct TokenActions {
    pub dialog: RwSignal<Option<Dialog>>,
    pub issue: ServerAction<IssueToken>,
    pub reissue: ServerAction<ReissueToken>,
    pub change: ServerAction<ChangeTokenStatus>,
    pub rename: ServerAction<RenameToken>,
    pub reduce: ServerAction<ReduceTokenScope>,
}

/// The list page's `TokenActions` (its components only live inside it).
pub(super) fn actions() -> TokenActions {
    expect_context::<TokenActions>()
}
