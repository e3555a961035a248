//! People's web sessions (tower-sessions, stored in the database). API tokens never
//! open one.

use tower_sessions::Session;

use super::service;
use crate::{error::AppError, people::CurrentUser, state::AppState};

const USER_ID: &str = "user_id";
const TENANT_ID: &str = "tenant_id";

fn session_error(err: tower_sessions::session::Error) -> AppError {
    tracing::error!(error = %err, "session store error");
    AppError::internal()
}

/// Starts a signed-in session under a fresh id (no fixation).
pub async fn sign_in(session: &Session, user: &CurrentUser) -> Result<(), AppError> {
    session.cycle_id().await.map_err(session_error)?;
    session.insert(USER_ID, &user.user_id).await.map_err(session_error)?;
    session.insert(TENANT_ID, &user.tenant_id).await.map_err(session_error)?;
    Ok(())
}

/// Ends the session on the server, not only in the browser.
pub async fn sign_out(session: &Session) -> Result<(), AppError> {
    session.flush().await.map_err(session_error)
}

/// The signed-in person, re-read from the database each time so a suspension or a
/// role change applies at once. A session whose person is gone or suspended is ended.
pub async fn current_user(state: &AppState, session: &Session) -> Result<Option<CurrentUser>, AppError> {
    let user_id: Option<String> = session.get(USER_ID).await.map_err(session_error)?;
    let tenant_id: Option<String> = session.get(TENANT_ID).await.map_err(session_error)?;
    let (Some(user_id), Some(tenant_id)) = (user_id, tenant_id) else {
        return Ok(None);
    };
    let user = service::active_member(state, &user_id, &tenant_id).await?;
    if user.is_none() {
        sign_out(session).await?;
    }
    Ok(user)
}
