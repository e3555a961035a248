//! Liveness and readiness, for load balancers and orchestrators.

use axum::{extract::State, Json};
use serde_json::{json, Value};

use app::{db::Db, error::AppError};

use crate::api_v1::ApiError;

/// Alive: answers without touching anything.
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready: the database answers.
pub async fn readyz(State(db): State<Db>) -> Result<Json<Value>, ApiError> {
    match sqlx::query("SELECT 1").execute(&db).await {
        Ok(_) => Ok(Json(json!({ "status": "ok" }))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            Err(AppError::new(app::error::ErrorCode::Unavailable, "The database is not reachable.").into())
        }
    }
}
