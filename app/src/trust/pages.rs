//! `/settings/developer/trusted-ci`: the workspace's trust policies, a form for a new
//! one (GitHub Actions and GitLab presets), and per policy Disable / Enable / Delete.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{form_error, FormError},
    trust::{
        api::{load_trust_page, ChangeTrustPolicy, CreateTrustPolicy},
        PolicyStatus, TrustPolicy, GITHUB_ISSUER, GITLAB_ISSUER, LIFETIME_DEFAULT_MINUTES, LIFETIME_MAX_MINUTES,
    },
};

fn issuer_label(issuer: &str) -> String {
    match issuer {
        GITHUB_ISSUER => "GitHub Actions".into(),
        GITLAB_ISSUER => "GitLab.com".into(),
        other => other.into(),
    }
}

#[component]
fn PolicyRow(p: TrustPolicy, change: ServerAction<ChangeTrustPolicy>) -> impl IntoView {
    let (toggle, label) = match p.status {
        PolicyStatus::Active => ("disable", "Disable"),
        PolicyStatus::Disabled => ("enable", "Enable"),
    };
    let conditions: Vec<String> = p.conditions.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let (name, id) = (p.name.clone(), p.id.clone());
    let id2 = id.clone();
    view! {
        <tr>
            <td>
                <strong>{p.name.clone()}</strong>
                <div class="secondary">{issuer_label(&p.issuer)}</div>
                <div class="secondary">"aud: " <code>{p.audience.clone()}</code></div>
            </td>
            <td>{conditions.into_iter().map(|c| view! { <div><code>{c}</code></div> }).collect_view()}</td>
            <td>
                {p.projects.clone().map_or_else(|| "All projects".to_string(), |keys| keys.join(", "))}
                <div class="secondary">
                    {p.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")} " · "
                    {format!("{} min", p.token_lifetime_minutes)}
                </div>
            </td>
            <td><span class=format!("badge status-{}", p.status.as_str())>{p.status.as_str()}</span></td>
            <td class="actions">
                <ActionForm action=change>
                    <input type="hidden" name="id" value=id />
                    <input type="hidden" name="action" value=toggle />
                    <button type="submit" aria-label=format!("{label} {name}")>{label}</button>
                </ActionForm>
                <ActionForm action=change>
                    <input type="hidden" name="id" value=id2 />
                    <input type="hidden" name="action" value="delete" />
                    <button type="submit" class="danger" aria-label=format!("Delete {}", p.name.clone())>"Delete"</button>
                </ActionForm>
            </td>
        </tr>
    }
}

#[component]
pub fn TrustedCiPage() -> impl IntoView {
    let create = ServerAction::<CreateTrustPolicy>::new();
    let change = ServerAction::<ChangeTrustPolicy>::new();
    let create_error = form_error(create.value());
    let change_error = form_error(change.value());
    let data = Resource::new(move || (create.version().get(), change.version().get()), |_| load_trust_page());
    view! {
        <Title text="Trusted CI" />
        <h1>"Trusted CI"</h1>
        <p class="lead">
            "Let CI jobs upload with no stored token: a job presents the OpenID Connect ID token its provider signs for it, and a policy here that matches it gets a token that lives minutes. "
            "Use it with " <code>"qa-hub upload"</code> " and no QA_HUB_TOKEN."
        </p>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! {
                        <FormError message=change_error />
                        {if page.policies.is_empty() {
                            view! { <p class="empty">"No trust policies yet."</p> }.into_any()
                        } else {
                            view! {
                                <table class="data policies">
                                    <thead><tr>
                                        <th scope="col">"Policy"</th>
                                        <th scope="col">"Conditions"</th>
                                        <th scope="col">"Token"</th>
                                        <th scope="col">"Status"</th>
                                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                    </tr></thead>
                                    <tbody>
                                        {page.policies.into_iter().map(|p| view! { <PolicyRow p change /> }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                        <ActionForm action=create attr:class="card form">
                            <h2>"New trust policy"</h2>
                            <label>"Name" <input name="name" maxlength="100" required placeholder="backend main branch" /></label>
                            <label>
                                "Issuer"
                                <select name="issuer">
                                    <option value=GITHUB_ISSUER selected>"GitHub Actions"</option>
                                    <option value=GITLAB_ISSUER>"GitLab.com"</option>
                                    <option value="custom">"Another issuer (URL below)"</option>
                                </select>
                            </label>
                            <label>
                                "Issuer URL"
                                <input name="custom_issuer" type="url" placeholder="https://gitlab.example.com" />
                                <span class="hint">"For a self-managed GitLab or another OIDC provider."</span>
                            </label>
                            <label>
                                "Audience"
                                <input name="audience" placeholder=page.default_audience.clone() />
                                <span class="hint">"What the job asks its ID token for (aud). Empty: " <code>{page.default_audience.clone()}</code></span>
                            </label>
                            <label>
                                "Conditions"
                                <textarea name="conditions" rows="3" required placeholder="repository=acme/backend\nref=refs/heads/main"></textarea>
                                <span class="hint">"One claim=value per line. Pin the source with an exact value: repository or repository_owner (GitHub), project_path or namespace_path (GitLab). * matches anything, in the other claims only (ref=refs/heads/*)."</span>
                            </label>
                            <fieldset>
                                <legend>"Projects the token may use"</legend>
                                <label class="check"><input type="radio" name="project_access" value="specific" checked />"Specific projects"</label>
                                <label class="check"><input type="radio" name="project_access" value="all" />"All projects (owners only)"</label>
                                {page.projects.into_iter().map(|p| view! {
                                    <label class="check"><input type="checkbox" name="projects[]" value=p.key.clone() />{format!("{} · {}", p.key, p.name)}</label>
                                }).collect_view()}
                            </fieldset>
                            <label>
                                "Scope"
                                <select name="scope">
                                    <option value="write" selected>"write (upload results)"</option>
                                    <option value="read">"read"</option>
                                </select>
                            </label>
                            <label>
                                "Token lifetime (minutes)"
                                <input name="token_lifetime_minutes" type="number" min="1" max=LIFETIME_MAX_MINUTES.to_string() value=LIFETIME_DEFAULT_MINUTES.to_string() />
                            </label>
                            <FormError message=create_error />
                            <button type="submit" class="primary">"Create policy"</button>
                        </ActionForm>
                    }.into_any(),
                    Err(err) => view! { <p role="alert">{err.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}
