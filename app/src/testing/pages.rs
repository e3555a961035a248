//! The runs tokens upload: `/projects` (each project's newest run), `/projects/{key}`
//! (its runs, newest first, paged) and `/projects/{key}/runs/{id}` (the results, failed
//! first, filtered by outcome and title, paged). Plain links and GET forms: the same
//! pages with JavaScript off.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::{
    components::PageError,
    testing::{
        api::{project_runs, projects_overview, run_page},
        Counts, Run, RunStatus,
    },
};

pub const PROJECTS_URL: &str = "/projects";

fn when(t: time::OffsetDateTime) -> String {
    format!("{} {:02}:{:02} UTC", t.date(), t.hour(), t.minute())
}

fn duration(ms: u64) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

fn run_badge(status: RunStatus) -> impl IntoView {
    view! { <span class=format!("badge run-{}", status.as_str())>{status.as_str()}</span> }
}

#[component]
fn CountsLine(c: Counts) -> impl IntoView {
    view! {
        <span class="counts">
            <span class="passed">{format!("{} passed", c.passed)}</span> " · "
            <span class="failed">{format!("{} failed", c.failed)}</span> " · "
            <span class="skipped">{format!("{} skipped", c.skipped)}</span> " · "
            <span class="error">{format!("{} errors", c.error)}</span>
        </span>
    }
}

fn run_url(run: &Run) -> String {
    format!("{PROJECTS_URL}/{}/runs/{}", run.project, run.id)
}

#[component]
pub fn ProjectsOverviewPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| projects_overview());
    view! {
        <Title text="Test runs" />
        <h1>"Test runs"</h1>
        <Suspense fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(list) if list.is_empty() => view! { <p class="empty">"No projects yet: create one under Settings → Projects."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="project-cards">
                            {list.into_iter().map(|p| view! {
                                <li class="card">
                                    <h2><a href=format!("{PROJECTS_URL}/{}", p.project.key)>{format!("{} · {}", p.project.key, p.project.name)}</a></h2>
                                    {match p.latest {
                                        Some(run) => view! {
                                            <p>
                                                {run_badge(run.status)} " "
                                                <a href=run_url(&run)>{run.name.clone()}</a>
                                                <span class="secondary">{format!(" · {}", when(run.created_at))}</span>
                                            </p>
                                            <p><CountsLine c=run.counts /></p>
                                        }.into_any(),
                                        None => view! { <p class="empty">"No runs yet."</p> }.into_any(),
                                    }}
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                    Err(err) => view! { <PageError err /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn ProjectRunsPage() -> impl IntoView {
    let params = use_params_map();
    let query = crate::components::use_query_params();
    let key = move || params.read().get("key").unwrap_or_default();
    let cursor = move || query.read().get("cursor").unwrap_or_default();
    let data = Resource::new(move || (key(), cursor()), |(key, cursor)| project_runs(key, cursor));
    view! {
        <Title text="Runs" />
        <p><a href=PROJECTS_URL>"← Test runs"</a></p>
        <Suspense fallback=|| view! { <p>"Loading runs…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! {
                        <h1>{format!("{} · {}", page.project.key, page.project.name)}</h1>
                        {if page.runs.is_empty() {
                            view! { <p class="empty">"No runs yet. Upload one with qa-hub upload."</p> }.into_any()
                        } else {
                            view! {
                                <table class="data runs">
                                    <thead><tr>
                                        <th scope="col">"Run"</th>
                                        <th scope="col">"Outcome"</th>
                                        <th scope="col">"Results"</th>
                                        <th scope="col">"Duration"</th>
                                        <th scope="col">"Uploaded"</th>
                                    </tr></thead>
                                    <tbody>
                                        {page.runs.into_iter().map(|run| view! {
                                            <tr>
                                                <th scope="row">
                                                    <a href=run_url(&run)>{run.name.clone()}</a>
                                                    {run.ci.branch.clone().map(|b| view! { <div class="secondary">{b}</div> })}
                                                </th>
                                                <td>{run_badge(run.status)}</td>
                                                <td><CountsLine c=run.counts /></td>
                                                <td>{duration(run.duration_ms)}</td>
                                                <td>
                                                    {when(run.created_at)}
                                                    {run.uploaded_by.clone().map(|by| view! { <div class="secondary">{format!("by {by}")}</div> })}
                                                </td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                        {page.next_cursor.map(|c| view! {
                            <p><a class="button" href=format!("{PROJECTS_URL}/{}?cursor={c}", page.project.key)>"Older runs"</a></p>
                        })}
                    }.into_any(),
                    Err(err) => view! { <PageError err /> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let query = crate::components::use_query_params();
    let args = move || {
        let (p, q) = (params.read(), query.read());
        (
            p.get("key").unwrap_or_default(),
            p.get("id").unwrap_or_default(),
            q.get("status").unwrap_or_default(),
            q.get("q").unwrap_or_default(),
            q.get("after").unwrap_or_default(),
            q.get("before").unwrap_or_default(),
            q.get("page").and_then(|n| n.parse::<i64>().ok()).unwrap_or(1),
        )
    };
    let data = Resource::new(args, |(key, id, status, q, after, before, page)| {
        run_page(key, id, status, q, after, before, page)
    });
    view! {
        <Title text="Run" />
        <Suspense fallback=|| view! { <p>"Loading the run…"</p> }>
            {move || Suspend::new(async move {
                let (key, id, status, search, ..) = args();
                match data.await {
                    Ok(page) => {
                        let run = page.run.clone();
                        let base = format!("{PROJECTS_URL}/{key}/runs/{id}");
                        let query: String = form_urlencoded::Serializer::new(String::new())
                            .append_pair("status", &status)
                            .append_pair("q", &search)
                            .finish();
                        // Keyset links: the page after this one's last row, or before its first.
                        let link = move |way: &str, cursor: &str, n: i64| format!("{base}?{query}&{way}={cursor}&page={n}");
                        let pages = (page.matching + page.per_page - 1) / page.per_page;
                        let matching = if page.matching_at_least {
                            format!("{}+ matching, failed first", page.matching)
                        } else {
                            format!("{} matching, failed first", page.matching)
                        };
                        view! {
                            <p><a href=format!("{PROJECTS_URL}/{}", run.project)>{format!("← {}", run.project)}</a></p>
                            <div class="page-head">
                                <h1>{run.name.clone()}</h1>
                                {run_badge(run.status)}
                            </div>
                            <p class="lead"><CountsLine c=run.counts /> {format!(" · {} results · {}", run.counts.total, duration(run.duration_ms))}</p>
                            {(run.status == RunStatus::Importing).then(|| view! {
                                <p class="notice" role="status">{format!("Importing: {} results have landed so far. Reload for more.", run.counts.total)}</p>
                            })}
                            <dl class="facts">
                                <dt>"Uploaded"</dt><dd>{when(run.created_at)} {run.uploaded_by.clone().map(|by| format!(" by {by}"))}</dd>
                                {run.source.clone().map(|s| view! { <dt>"Report"</dt><dd>{s}</dd> })}
                                {run.ci.commit.clone().map(|c| view! { <dt>"Commit"</dt><dd><code>{c}</code></dd> })}
                                {run.ci.branch.clone().map(|b| view! { <dt>"Branch"</dt><dd>{b}</dd> })}
                                {run.ci.job.clone().map(|j| view! { <dt>"Job"</dt><dd>{j}</dd> })}
                                {run.ci.build_url.clone().map(|u| view! { <dt>"Build"</dt><dd><a href=u.clone() rel="noopener noreferrer">{u.clone()}</a></dd> })}
                                {run.run_key.clone().map(|k| view! { <dt>"Shards"</dt><dd>{format!("{} (run key {k})", run.shards)}</dd> })}
                            </dl>
                            <form method="get" class="filters" role="search">
                                <label>
                                    "Outcome"
                                    <select name="status">
                                        {[("all", "All"), ("failed", "Failed"), ("error", "Errors"), ("skipped", "Skipped"), ("passed", "Passed")].into_iter().map(|(v, label)| {
                                            let selected = status == v || (status.is_empty() && v == "all");
                                            view! { <option value=v selected=selected>{label}</option> }
                                        }).collect_view()}
                                    </select>
                                </label>
                                <label>"Search titles" <input type="search" name="q" value=search.clone() maxlength="200" /></label>
                                <button type="submit">"Filter"</button>
                            </form>
                            <p class="secondary">{matching}</p>
                            <table class="data results">
                                <thead><tr>
                                    <th scope="col">"Outcome"</th>
                                    <th scope="col">"Test"</th>
                                    <th scope="col">"Duration"</th>
                                </tr></thead>
                                <tbody>
                                    {page.results.into_iter().map(|r| view! {
                                        <tr class=format!("result-{}", r.status.as_str())>
                                            <td><span class=format!("badge result-{}", r.status.as_str())>{r.status.as_str()}</span></td>
                                            <td>
                                                {r.case_title.clone()}
                                                {r.message.clone().map(|m| view! { <pre class="message">{m}</pre> })}
                                            </td>
                                            <td>{r.duration_ms.map(duration).unwrap_or_default()}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                            {(page.next.is_some() || page.previous.is_some()).then(|| {
                                let of = if page.matching_at_least { String::new() } else { format!(" of {}", pages.max(page.page)) };
                                view! {
                                    <nav class="pager" aria-label="Result pages">
                                        {page.previous.clone().map(|c| view! { <a href=link("before", &c, page.page - 1)>"← Previous"</a> })}
                                        <span>{format!(" Page {}{of} ", page.page)}</span>
                                        {page.next.clone().map(|c| view! { <a href=link("after", &c, page.page + 1)>"Next →"</a> })}
                                    </nav>
                                }
                            })}
                        }.into_any()
                    }
                    Err(err) => view! { <PageError err /> }.into_any(),
                }
            })}
        </Suspense>
    }
}
