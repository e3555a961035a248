//! Liveness and readiness, for load balancers and orchestrators.

use axum::{extract::State, Json};
use serde::Serialize;

use app::{db::Db, error::AppError};

use crate::api_v1::ApiError;

/// `{"status": "ok"}`: the answer of both probes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok` (a failing probe answers the contract's error body instead).
    pub status: &'static str,
}

const OK: Health = Health { status: "ok" };

/// Alive: answers without touching anything.
pub async fn healthz() -> Json<Health> {
    Json(OK)
}

/// Ready: the database answers.
pub async fn readyz(State(db): State<Db>) -> Result<Json<Health>, ApiError> {
    match sqlx::query("SELECT 1").execute(&db).await {
        Ok(_) => Ok(Json(OK)),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(AppError::new(app::error::ErrorCode::Unavailable, "The database is not reachable.").into())
        }
    }
}
