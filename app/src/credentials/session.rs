//! A person signed in on the pages (a tower-sessions cookie). They act with their role in
//! the workspace, read again on every request: owners and admins manage tokens, people,
//! settings and trusted CI; members work with test data.

use super::Credential;
use crate::people::{CurrentUser, Role};

pub fn of_person(user_id: &str, role: Role) -> Credential {
    Credential::Person { user_id: user_id.to_string(), role }
}

pub fn of_user(user: &CurrentUser) -> Credential {
    of_person(&user.user_id, user.role)
}
