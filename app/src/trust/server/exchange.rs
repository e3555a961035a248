//! `POST /api/v1/oidc/token`: a CI job's ID token for a short-lived `qh_` token.
//!
//! The checks, in order (any failure is 401 `oidc_invalid` naming the check, never
//! echoing the token): a signed JWT with an asymmetric algorithm (`none` and HS* are
//! refused); an issuer some active policy trusts; its key by `kid` from the issuer's JWKS
//! (refetched on an unknown `kid`), whose type and algorithm the token's `alg` must fit;
//! the signature, `iss`, `exp` and `nbf` (60 s leeway), `iat` not in the future; then the
//! policies: audience and every condition must match, in exactly one workspace (else 403
//! `oidc_no_policy`); and the `jti` (or the token's hash) is accepted once.

use std::collections::BTreeSet;

use jsonwebtoken::{
    decode, decode_header,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, Jwk},
    Algorithm, DecodingKey, Validation,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::store::{self, PolicyRow};
use crate::{
    actor::RequestMeta,
    db::{now, timestamp},
    error::{AppError, ErrorCode},
    state::AppState,
    tokens::server::lifecycle::{mint_for_ci, CiGrant},
    trust::{glob_match, OidcToken},
};

const LEEWAY_SECS: u64 = 60;
const ID_TOKEN_MAX: usize = 16 * 1024;

fn invalid(why: &str) -> AppError {
    AppError::new(ErrorCode::OidcInvalid, format!("The ID token was refused: {why}."))
}

fn no_policy(why: &str) -> AppError {
    AppError::new(ErrorCode::OidcNoPolicy, why)
}

/// The key must be of the kind the token's algorithm needs, and name that algorithm if
/// it names one: a token cannot choose how its signature is checked.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    use Algorithm::*;
    let family = matches!(
        (&jwk.algorithm, alg),
        (AlgorithmParameters::RSA(_), RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
            | (AlgorithmParameters::EllipticCurve(_), ES256 | ES384)
            | (AlgorithmParameters::OctetKeyPair(_), EdDSA)
    );
    let named =
        jwk.common.key_algorithm.is_none_or(|named| serde_json::to_value(named).ok() == serde_json::to_value(alg).ok());
    family && named
}

/// A claim as text for matching: strings as they are, numbers and booleans written out.
fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn matches(policy: &PolicyRow, audiences: &[String], claims: &Value) -> bool {
    audiences.contains(&policy.policy.audience)
        && policy
            .policy
            .conditions
            .iter()
            .all(|(claim, pattern)| claim_text(&claims[claim]).is_some_and(|v| glob_match(pattern, &v)))
}

/// What the token list shows: "acme/backend@refs/heads/main (run 123)" for GitHub,
/// "group/project@main (pipeline 45)" for GitLab, the subject otherwise.
pub fn minted_for(claims: &Value) -> String {
    let text = |k: &str| claim_text(&claims[k]);
    let source = text("repository").or_else(|| text("project_path")).or_else(|| text("sub")).unwrap_or_default();
    let at = text("ref").map(|r| format!("@{r}")).unwrap_or_default();
    let run = match (text("run_id"), text("pipeline_id")) {
        (Some(run), _) => format!(" (run {run})"),
        (None, Some(pipeline)) => format!(" (pipeline {pipeline})"),
        _ => String::new(),
    };
    format!("{source}{at}{run}").chars().take(200).collect()
}

/// The claims worth keeping in the audit entry: who ran what, where.
fn identifying(claims: &Value) -> Value {
    let keep = [
        "iss",
        "sub",
        "repository",
        "repository_id",
        "repository_owner",
        "project_path",
        "project_id",
        "namespace_path",
        "ref",
        "ref_type",
        "environment",
        "workflow_ref",
        "run_id",
        "run_attempt",
        "pipeline_id",
        "job_id",
        "actor",
        "user_login",
        "sha",
    ];
    Value::Object(keep.iter().filter_map(|k| Some((k.to_string(), claims.get(*k)?.clone()))).collect())
}

pub async fn exchange(state: &AppState, meta: &RequestMeta, id_token: &str) -> Result<OidcToken, AppError> {
    let id_token = id_token.trim();
    if id_token.is_empty() || id_token.len() > ID_TOKEN_MAX {
        return Err(invalid("send the CI job's ID token (a JWT of at most 16 KiB) as id_token"));
    }
    let header = decode_header(id_token).map_err(|_| invalid("it is not a signed JWT (alg none is refused)"))?;
    if matches!(header.alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return Err(invalid("its algorithm is symmetric (HS*); ID tokens are signed with the issuer's key"));
    }
    // Read before the signature is checked, the issuer only chooses whose keys check it.
    let unverified = jsonwebtoken::dangerous::insecure_decode::<Value>(id_token)
        .map_err(|_| invalid("its claims cannot be read"))?
        .claims;
    let issuer = unverified["iss"].as_str().ok_or_else(|| invalid("it names no issuer (iss)"))?.to_string();
    if !store::issuer_trusted(&state.db, &issuer).await? {
        return Err(invalid("no workspace trusts its issuer"));
    }
    let jwk = state
        .issuers
        .key(&issuer, header.kid.as_deref())
        .await
        .map_err(|e| {
            tracing::warn!(issuer, error = %e, "could not fetch an OIDC issuer's keys");
            invalid("the issuer's keys could not be fetched")
        })?
        .ok_or_else(|| invalid("it is signed with a key (kid) the issuer does not publish"))?;
    if !key_fits(&jwk, header.alg) {
        return Err(invalid("its algorithm does not fit the issuer's key"));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| invalid("the issuer's key cannot be used"))?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&issuer]);
    validation.leeway = LEEWAY_SECS;
    validation.validate_nbf = true;
    // The audience is matched against each policy below.
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud"]);
    let claims = decode::<Value>(id_token, &key, &validation)
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => invalid("it has expired"),
            ErrorKind::ImmatureSignature => invalid("it is not valid yet (nbf)"),
            ErrorKind::InvalidIssuer => invalid("its issuer does not match"),
            ErrorKind::InvalidSignature => invalid("its signature does not verify"),
            ErrorKind::MissingRequiredClaim(claim) => invalid(&format!("it has no {claim} claim")),
            _ => invalid("it failed verification"),
        })?
        .claims;
    let now = now();
    if claims["iat"].as_i64().is_none_or(|iat| iat > now + LEEWAY_SECS as i64) {
        return Err(invalid("it was issued in the future (iat)"));
    }
    let audiences: Vec<String> = match &claims["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(list) => list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };

    let candidates = store::active_for_issuer(&state.db, &issuer).await?;
    let matching: Vec<&PolicyRow> = candidates.iter().filter(|p| matches(p, &audiences, &claims)).collect();
    let tenants: BTreeSet<&str> = matching.iter().map(|p| p.tenant_id.as_str()).collect();
    let policy = match tenants.len() {
        0 => {
            let aud_known = candidates.iter().any(|p| audiences.contains(&p.policy.audience));
            return Err(no_policy(if aud_known {
                "No active trust policy matches this job's claims (repository, ref, …)."
            } else {
                "No active trust policy expects this token's audience (aud); request the ID token for the hub's URL."
            }));
        }
        1 => matching[0],
        _ => {
            return Err(no_policy(
                "Trust policies of more than one workspace match this job; make their conditions specific.",
            ))
        }
    };

    let jti = match claims["jti"].as_str() {
        Some(jti) => format!("{issuer} {jti}"),
        None => id_token.to_string(),
    };
    let jti_hash: String = Sha256::digest(jti.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let exp = claims["exp"].as_i64().unwrap_or(now);
    if !store::first_use_of(&state.db, &jti_hash, exp, now).await? {
        return Err(invalid("it was exchanged before (a replayed jti)"));
    }

    let label = minted_for(&claims);
    let grant = CiGrant {
        tenant_id: &policy.tenant_id,
        policy_id: &policy.policy.id,
        policy_name: &policy.policy.name,
        scopes: &policy.policy.scopes,
        project_ids: policy.project_ids.as_deref(),
        minutes: policy.policy.token_lifetime_minutes,
        minted_for: &label,
    };
    let (row, token) = mint_for_ci(state, grant, meta, identifying(&claims)).await?;
    Ok(OidcToken {
        token,
        expires_at: timestamp(row.expires_at.unwrap_or(now)),
        projects: policy.policy.projects.clone(),
        scopes: policy.policy.scopes.clone(),
        policy_id: policy.policy.id.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn minted_tokens_say_what_they_were_minted_for() {
        let github = json!({"repository": "acme/backend", "ref": "refs/heads/main", "run_id": "123"});
        assert_eq!(minted_for(&github), "acme/backend@refs/heads/main (run 123)");
        let gitlab = json!({"project_path": "group/app", "ref": "main", "pipeline_id": "45"});
        assert_eq!(minted_for(&gitlab), "group/app@main (pipeline 45)");
        assert_eq!(minted_for(&json!({"sub": "job"})), "job");
    }
}
