//! A token's own page: its facts, its actions, usage over 30 days and recent addresses.

#[allow(unused_imports)]
use super::*;

/// The token page's actions for owners and admins: the same server function and the
/// same dialogs as the list (Rename, Rotate and Revoke open the list's dialog for this
/// token, with or without JavaScript).
#[component]
pub(super) fn TokenPageActions(t: TokenSummary, change: ServerAction<ChangeTokenStatus>) -> impl IntoView {
    let status = t.status;
    let live = matches!(status, TokenStatus::Active | TokenStatus::Disabled);
    let toggle = match status {
        TokenStatus::Active => Some(("disable", "Disable")),
        TokenStatus::Disabled => Some(("enable", "Enable")),
        _ => None,
    };
    let id = t.id.clone();
    let dialog = move |kind: &'static str, label: &'static str, class: &'static str| {
        view! {
            <form method="get" action=LIST_URL class="inline-form">
                <input type="hidden" name="dialog" value=kind />
                <input type="hidden" name="id" value=id.clone() />
                <button type="submit" class=class>{label}</button>
            </form>
        }
    };
    view! {
        <section class="token-actions" aria-label="Token actions">
            {toggle.map(|(action, label)| view! {
                <ActionForm action=change attr:class="inline-form">
                    <input type="hidden" name="id" value=t.id.clone() />
                    <input type="hidden" name="action" value=action />
                    <button type="submit">{label}</button>
                </ActionForm>
            })}
            {live.then(|| dialog("rename", "Rename", ""))}
            {(status != TokenStatus::Revoked).then(|| dialog("rotate", "Rotate", ""))}
            {live.then(|| dialog("revoke", "Revoke", "danger"))}
        </section>
    }
}

/// `/settings/developer/api-tokens/{id}`: one token's usage over 30 days, its recent
/// addresses, a least-privilege hint and, during a rotation, what is retiring.
#[component]
pub fn ApiTokenPage() -> impl IntoView {
    use leptos_router::hooks::use_params_map;
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let reduce = ServerAction::<ReduceTokenScope>::new();
    let change = ServerAction::<ChangeTokenStatus>::new();
    let detail = Resource::new(move || (id(), reduce.version().get()), |(id, _)| load_token_detail(id));
    let error = form_error(reduce.value());
    let user = use_current_user();
    view! {
        <Title text="API token" />
        <p><a href=LIST_URL>"← API Tokens"</a></p>
        <Transition fallback=|| view! { <p>"Loading the token…"</p> }>
            {move || Suspend::new(async move {
                let manager = matches!(user.await, Ok(Some(u)) if u.role.can_manage());
                match detail.await {
                    Ok(d) => {
                        let t = d.token.clone();
                        view! {
                            <div class="page-head">
                                <h1>{t.name.clone()}</h1>
                                <span class=format!("badge status-{}", t.status.as_str())>{status_label(t.status)}</span>
                            </div>
                            {t.retiring().then(|| view! {
                                <p class="banner warning retiring" role="status">
                                    {retiring_text(&t)} ". "
                                    {match (t.retire_at, t.retire_on_first_use, d.replaced_by_masked.clone()) {
                                        (Some(at), false, _) => format!("It stops working at {}.", date_time(at)),
                                        (at, _, new) => format!(
                                            "{} takes over at its first use.{}",
                                            new.unwrap_or_else(|| "Its replacement".to_string()),
                                            at.map(|at| format!(" It stops working at {} at the latest.", date_time(at)))
                                                .unwrap_or_default(),
                                        ),
                                    }}
                                </p>
                            })}
                            <dl class="facts">
                                <dt>"Token"</dt><dd><code>{t.masked()}</code></dd>
                                <dt>"Scopes"</dt><dd>{t.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")}</dd>
                                <dt>"Projects"</dt><dd>{t.projects.as_ref().map_or_else(|| "All projects".to_string(), |p| p.join(", "))}</dd>
                                <dt>"Owner"</dt><dd>{owner_label(&t)}</dd>
                                <dt>"Created"</dt><dd>{date(t.created_at)} {t.created_by.clone().map(|by| format!(" by {by}"))}</dd>
                                <dt>"Expires"</dt><dd>{t.expires_at.map_or_else(|| "Never".to_string(), date)}</dd>
                                <dt>"IP allowlist"</dt><dd>{if t.ip_allowlist.is_empty() { "Any address (the workspace's list applies)".to_string() } else { t.ip_allowlist.join(", ") }}</dd>
                                <dt>"Last used"</dt><dd>{t.last_used_at.map_or_else(|| "Never".to_string(), |at| relative_time(at, d.now))}</dd>
                            </dl>
                            {manager.then(|| view! { <TokenPageActions t=t.clone() change /> })}
                            <LeastPrivilegeHint t=t.clone() manager reduce />
                            <FormError message=error />
                            <section aria-labelledby="usage-heading">
                                <h2 id="usage-heading">{format!("Requests, last {USAGE_DAYS} days")}</h2>
                                <UsageChart usage=d.usage.clone() />
                            </section>
                            <section aria-labelledby="addresses-heading">
                                <h2 id="addresses-heading">"Recent addresses"</h2>
                                {if d.addresses.is_empty() {
                                    view! { <p class="empty">"Not used yet."</p> }.into_any()
                                } else {
                                    view! {
                                        <table class="data addresses">
                                            <thead><tr>
                                                <th scope="col">"Address"</th>
                                                <th scope="col">"Last used"</th>
                                                <th scope="col">"First seen"</th>
                                            </tr></thead>
                                            <tbody>
                                                {d.addresses.iter().map(|a| view! {
                                                    <tr>
                                                        <th scope="row"><code>{a.ip.clone()}</code></th>
                                                        <td>{date_time(a.last_seen_at)}</td>
                                                        <td>{date_time(a.first_seen_at)}</td>
                                                    </tr>
                                                }).collect_view()}
                                            </tbody>
                                        </table>
                                    }.into_any()
                                }}
                            </section>
                        }.into_any()
                    }
                    Err(err) => view! { <h1>"API token"</h1> <p role="alert">{err.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}

/// Requests per day as stacked bars (read, write, admin), drawn as inline SVG.
#[component]
pub(super) fn UsageChart(usage: TokenUsage) -> impl IntoView {
    const HEIGHT: f64 = 120.0;
    const BAR: f64 = 14.0;
    const STEP: f64 = 20.0;
    let max = usage.days.iter().map(|d| d.counts.total()).max().unwrap_or(0).max(1) as f64;
    let width = STEP * usage.days.len() as f64;
    let total = usage.total;
    let summary = format!(
        "Requests per day over the last {USAGE_DAYS} days: {} read, {} write, {} admin in all; the busiest day had {}.",
        total.read, total.write, total.admin, max as u64
    );
    let bars = usage
        .days
        .iter()
        .enumerate()
        .map(|(i, day)| {
            let x = i as f64 * STEP + (STEP - BAR) / 2.0;
            let c = day.counts;
            let mut top = HEIGHT;
            let segments = [("read", c.read), ("write", c.write), ("admin", c.admin)]
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .map(|(kind, n)| {
                    let h = (n as f64 / max * HEIGHT).max(1.0);
                    top -= h;
                    view! { <rect class=format!("bar-{kind}") x=x y=top width=BAR height=h /> }
                })
                .collect_view();
            let title = format!("{}: {} read, {} write, {} admin", day.date, c.read, c.write, c.admin);
            view! { <g class="day"><title>{title}</title>{segments}</g> }
        })
        .collect_view();
    let first = usage.days.first().map(|d| d.date.clone()).unwrap_or_default();
    let last = usage.days.last().map(|d| d.date.clone()).unwrap_or_default();
    view! {
        <figure class="usage-chart">
            <svg role="img" aria-label=summary.clone() viewBox=format!("0 0 {width} {}", HEIGHT + 16.0) preserveAspectRatio="none">
                <line class="axis" x1="0" y1=HEIGHT x2=width y2=HEIGHT />
                {bars}
                <text class="tick" x="0" y=HEIGHT + 14.0>{first}</text>
                <text class="tick end" x=width y=HEIGHT + 14.0 text-anchor="end">{last}</text>
            </svg>
            <figcaption>
                <span class="legend read">"read " {total.read}</span>
                <span class="legend write">"write " {total.write}</span>
                <span class="legend admin">"admin " {total.admin}</span>
            </figcaption>
        </figure>
    }
}
