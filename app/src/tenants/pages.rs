//! `/settings/workspace`: the IP allowlist and the AI settings `/api/v1/me` reports.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{form_error, FormError},
    settings::use_current_user,
    tenants::api::{get_workspace, UpdateWorkspace},
};

#[component]
pub fn WorkspacePage() -> impl IntoView {
    let update = ServerAction::<UpdateWorkspace>::new();
    let error = form_error(update.value());
    let view_data = Resource::new(move || update.version().get(), |_| get_workspace());
    let user = use_current_user();
    view! {
        <Title text="Workspace" />
        <h1>"Workspace"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let (manager, owner) = match user.await {
                    Ok(Some(u)) => (u.role.can_manage(), u.role == crate::people::Role::Owner),
                    _ => (false, false),
                };
                match view_data.await {
                    Ok(data) => {
                        let s = data.settings;
                        let your_ip = data.your_ip.unwrap_or_else(|| "unknown".into());
                        view! {
                            <p class="lead">{s.name.clone()} " · " {s.status.clone()}</p>
                            <ActionForm action=update attr:class="card form">
                                <label>
                                    "IP allowlist"
                                    // The text child is for the server's HTML; prop:value keeps it right after a save.
                                    <textarea name="ip_allowlist" rows="4" disabled=!manager placeholder="203.0.113.0/24" prop:value=s.ip_allowlist.join("\n")>{s.ip_allowlist.join("\n")}</textarea>
                                    <span class="hint">
                                        "One address or CIDR range per line. API tokens of this workspace work only from these addresses; empty allows any. Your address is "
                                        <code>{your_ip}</code> ": a list without it is refused, so you cannot lock yourself out."
                                    </span>
                                </label>
                                <label>"AI provider" <input name="ai_provider" maxlength="100" disabled=!manager value=s.ai.provider.clone().unwrap_or_default() prop:value=s.ai.provider.clone().unwrap_or_default() /></label>
                                <label>"AI model" <input name="ai_model" maxlength="100" disabled=!manager value=s.ai.model.clone().unwrap_or_default() prop:value=s.ai.model.clone().unwrap_or_default() /></label>
                                <label>
                                    "Maximum token lifetime (days)"
                                    <input name="max_token_lifetime_days" type="number" min="1" max="3650" inputmode="numeric" disabled=!manager readonly=!owner
                                        value=s.max_token_lifetime_days.map(|d| d.to_string()).unwrap_or_default()
                                        prop:value=s.max_token_lifetime_days.map(|d| d.to_string()).unwrap_or_default() />
                                    <span class="hint">
                                        "New tokens, and new expiry dates, may be at most this many days away; empty: no maximum. Tokens that already live longer are flagged in the token list. Only owners change it."
                                    </span>
                                </label>
                                <FormError message=error />
                                {manager.then(|| view! { <button type="submit" class="primary">"Save settings"</button> })}
                            </ActionForm>
                        }.into_any()
                    }
                    Err(err) => view! { <p role="alert">{err.message}</p> }.into_any(),
                }
            })}
        </Suspense>
    }
}
