//! `GET /api/v1/me`: which tenant, which scopes, which token (top level, no envelope).

use axum::Json;
use serde_json::{json, Value};

use super::auth::ApiAuth;

pub async fn me(auth: ApiAuth) -> Json<Value> {
    let p = &auth.principal;
    let expires_at = p.expires_at.and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok());
    Json(json!({
        "tenant": { "id": p.tenant_id, "name": p.tenant_name, "status": p.tenant_status },
        "scopes": p.scopes,
        "ai": { "provider": p.ai.provider, "model": p.ai.model, "quota_exhausted": p.ai.quota_exhausted },
        "token": {
            "id": p.token_id,
            "name": p.name,
            "prefix": p.prefix,
            "projects": p.projects.as_ref().map(|s| &s.keys),
            "expires_at": expires_at,
        },
    }))
}
