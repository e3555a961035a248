//! `/settings/projects`: everyone in the tenant sees the list; owners and admins get the form.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::{
    components::{form_error, FormError},
    projects::api::{list_projects, CreateProject},
    settings::use_current_user,
};

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let create = ServerAction::<CreateProject>::new();
    let error = form_error(create.value());
    let projects = Resource::new(move || create.version().get(), |_| list_projects());
    let user = use_current_user();
    view! {
        <Title text="Projects" />
        <h1>"Projects"</h1>
        <Suspense>
            {move || Suspend::new(async move {
                let can_manage = matches!(user.await, Ok(Some(u)) if u.role.can_manage());
                can_manage
                    .then(|| {
                        view! {
                            <ActionForm action=create attr:class="card form inline">
                                <h2>"New project"</h2>
                                <label>
                                    "Key" <input name="key" maxlength="10" placeholder="BD" autocapitalize="characters" required />
                                </label>
                                <label>
                                    "Name" <input name="name" maxlength="100" required />
                                </label>
                                <button type="submit" class="primary">
                                    "Create project"
                                </button>
                                <FormError message=error />
                            </ActionForm>
                        }
                    })
            })}
        </Suspense>
        <Transition fallback=|| view! { <p>"Loading projects…"</p> }>
            {move || Suspend::new(async move {
                match projects.await {
                    Ok(list) if list.is_empty() => {
                        view! { <p class="empty">"No projects yet."</p> }.into_any()
                    }
                    Ok(list) => {
                        view! {
                            <table class="data">
                                <thead>
                                    <tr>
                                        <th scope="col">"Key"</th>
                                        <th scope="col">"Name"</th>
                                        <th scope="col">"Created"</th>
                                    </tr>
                                </thead>
                                <tbody>
                                    {list
                                        .into_iter()
                                        .map(|p| {
                                            view! {
                                                <tr>
                                                    <td>
                                                        <code>{p.key}</code>
                                                    </td>
                                                    <td>{p.name}</td>
                                                    <td>{p.created_at.date().to_string()}</td>
                                                </tr>
                                            }
                                        })
                                        .collect_view()}
                                </tbody>
                            </table>
                        }
                            .into_any()
                    }
                    Err(err) => view! { <p role="alert">{err.message}</p> }.into_any(),
                }
            })}
        </Transition>
    }
}
