//! `GET /api/v1/me`: which tenant, which scopes, which token (top level, no envelope).

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use app::tokens::Scope;

use super::{auth::ApiAuth, openapi::Refusals};

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub tenant: MeTenant,
    /// Every scope the token has, implied ones included.
    pub scopes: Vec<Scope>,
    pub ai: MeAi,
    pub token: MeToken,
}

#[derive(Serialize, ToSchema)]
pub struct MeTenant {
    pub id: String,
    pub name: String,
    /// `ACTIVE` or `SUSPENDED`.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeAi {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub quota_exhausted: bool,
}

#[derive(Serialize, ToSchema)]
pub struct MeToken {
    pub id: String,
    pub name: String,
    pub prefix: String,
    /// `null`: every project of the tenant.
    pub projects: Option<Vec<String>>,
    /// RFC 3339; `null` for a token that never expires.
    pub expires_at: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "me_me",
    path = "/api/v1/me",
    tag = "me",
    responses(
        (status = 200, description = "OK", body = Me),
        Refusals,
    )
)]
pub async fn me(auth: ApiAuth) -> Json<Me> {
    let p = auth.principal;
    let expires_at = p.expires_at.and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok());
    Json(Me {
        tenant: MeTenant { id: p.tenant_id, name: p.tenant_name, status: p.tenant_status },
        scopes: p.scopes,
        ai: MeAi { provider: p.ai.provider, model: p.ai.model, quota_exhausted: p.ai.quota_exhausted },
        token: MeToken {
            id: p.token_id,
            name: p.name,
            prefix: p.prefix.to_string(),
            projects: p.projects.map(|s| s.keys),
            expires_at,
        },
    })
}
