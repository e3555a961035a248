//! `POST /api/v1/oidc/token`: a CI job's ID token for a short-lived `qh_` token.
//!
//! The job names its workspace (`workspace`, else the request's host name, else the hub's
//! only workspace); only that workspace's policies are read, so another workspace can
//! neither block nor capture its jobs. The checks, in order (any failure is 401
//! `oidc_invalid` naming the check, never echoing the token): a signed JWT with an
//! asymmetric algorithm (`none` and HS* are refused); an issuer an active policy of the
//! workspace trusts (the same answer whether the workspace exists or not); its key by
//! `kid` from the issuer's JWKS (refetched on an unknown `kid`), a signing key (`use` not
//! `enc`) whose type and algorithm the token's `alg` must fit; the signature, `iss`, `exp`
//! and `nbf` (60 s leeway), `iat` not in the future and `exp − iat` at most a day; then
//! the policies: audience and every condition must match (else 403 `oidc_no_policy`); the
//! policy's creator must still be able to mint the token (else 403, saying why); and the
//! ID token is accepted once, by `jti`, or by issuer, subject and issue time.

use jsonwebtoken::{
    decode, decode_header,
    errors::ErrorKind,
    jwk::{AlgorithmParameters, Jwk, PublicKeyUse},
    Algorithm, DecodingKey, Validation,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{
    creator::{credential_now, Lapsed},
    service::may_mint,
    store::{self, PolicyRow},
};
use crate::{
    actor::RequestMeta,
    addresses::normalize_host,
    db::{now, timestamp, Db},
    error::{AppError, ErrorCode},
    policy::Addresses,
    state::AppState,
    tokens::server::lifecycle::{mint_for_ci, CiGrant},
    trust::{condition_matches, OidcToken},
};

const LEEWAY_SECS: u64 = 60;
/// The longest an ID token may live (`exp − iat`): CI providers issue them for minutes
/// (GitHub) or the job's timeout (GitLab); one good for longer is refused.
pub const ID_TOKEN_LIFETIME_MAX_SECS: i64 = 86_400;
const ID_TOKEN_MAX: usize = 16 * 1024;

fn invalid(why: &str) -> AppError {
    AppError::new(ErrorCode::OidcInvalid, format!("The ID token was refused: {why}."))
}

/// Every refusal before the signature is known to be good says the same, so a forged
/// token learns nothing: not whether the named workspace exists, nor which issuers it
/// trusts, nor whether it got as far as the key. The precise reason goes to the log.
fn refused_unverified(why: &str) -> AppError {
    tracing::info!(why, "an OIDC exchange was refused before its signature verified");
    invalid("it is not signed by a key of an issuer this workspace trusts (iss, kid, algorithm and signature are checked; see the server log)")
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
    // A key published for encryption never checks a signature.
    let signing = matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature));
    family && named && signing
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
            .all(|(claim, pattern)| claim_text(&claims[claim]).is_some_and(|v| condition_matches(claim, pattern, &v)))
}

/// The workspace a job's exchange is for: the one it names, else the one that holds the
/// request's host name, else the hub's only workspace. `None`: no such (active)
/// workspace, answered like a workspace that trusts no such issuer.
async fn workspace_of(db: &Db, named: Option<&str>, host: Option<&str>) -> Result<Option<String>, AppError> {
    /// A tenant's id and status, read by column name.
    #[derive(sqlx::FromRow)]
    struct TenantStatus {
        id: String,
        status: String,
    }
    let active = |rows: Vec<TenantStatus>| rows.into_iter().find(|t| t.status == "ACTIVE").map(|t| t.id);
    if let Some(name) = named.map(str::trim) {
        let rows = sqlx::query_as("SELECT id, status FROM tenants WHERE name = $1").bind(name).fetch_all(db).await?;
        return Ok(active(rows));
    }
    if let Some(host) = host.map(normalize_host).filter(|h| !h.is_empty()) {
        let rows = sqlx::query_as(
            "SELECT tn.id AS id, tn.status AS status FROM tenant_hosts th JOIN tenants tn ON tn.id = th.tenant_id \
             WHERE th.host = $1",
        )
        .bind(host)
        .fetch_all(db)
        .await?;
        if !rows.is_empty() {
            return Ok(active(rows));
        }
    }
    let rows: Vec<TenantStatus> = sqlx::query_as("SELECT id, status FROM tenants LIMIT 2").fetch_all(db).await?;
    if rows.len() > 1 {
        return Err(AppError::invalid(
            "This hub has several workspaces: name yours (\"workspace\" in the request; qa-hub: QA_HUB_WORKSPACE or --workspace).",
        ));
    }
    Ok(active(rows))
}

/// What makes an ID token the same token however its signature is encoded: its `jti`,
/// or its issuer, subject and issue time (an ECDSA signature's `s` and `n − s` both
/// verify, so the token's bytes are not its identity).
fn replay_key(issuer: &str, claims: &Value) -> String {
    let key = match claims["jti"].as_str() {
        Some(jti) => format!("jti\n{issuer}\n{jti}"),
        None => format!(
            "sub\n{issuer}\n{}\n{}",
            claim_text(&claims["sub"]).unwrap_or_default(),
            claims["iat"].as_i64().unwrap_or_default()
        ),
    };
    Sha256::digest(key.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
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

/// `workspace`: the workspace the job names; `host`: the request's `Host`.
pub async fn exchange(
    state: &AppState,
    meta: &RequestMeta,
    id_token: &str,
    workspace: Option<&str>,
    host: Option<&str>,
) -> Result<OidcToken, AppError> {
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
    let tenant_id = workspace_of(&state.db, workspace, host).await?;
    let candidates = match &tenant_id {
        Some(tenant_id) => store::active_for_issuer(&state.db, tenant_id, &issuer).await?,
        None => Vec::new(),
    };
    if candidates.is_empty() {
        return Err(refused_unverified("the workspace does not exist, or no active policy of it trusts the issuer"));
    }
    let jwk = state
        .issuers
        .key(&issuer, header.kid.as_deref())
        .await
        .map_err(|e| {
            tracing::warn!(issuer, error = %e, "could not fetch an OIDC issuer's keys");
            refused_unverified("the issuer's keys could not be fetched")
        })?
        .ok_or_else(|| refused_unverified("it is signed with a key (kid) the issuer does not publish"))?;
    if !key_fits(&jwk, header.alg) {
        return Err(refused_unverified("its algorithm does not fit the issuer's key (or the key is for encryption)"));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| refused_unverified("the issuer's key cannot be used"))?;
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
            ErrorKind::InvalidSignature => refused_unverified("its signature does not verify"),
            ErrorKind::MissingRequiredClaim(claim) => invalid(&format!("it has no {claim} claim")),
            _ => invalid("it failed verification"),
        })?
        .claims;
    let now = now();
    // Whole seconds in range only: a decimal or huge `exp` the JWT library accepts
    // would otherwise slip past the lifetime bound and the replay record.
    let seconds = |claim: &str| claims[claim].as_i64().filter(|t| (0..=i64::from(u32::MAX) * 4).contains(t));
    let (Some(iat), Some(exp)) = (seconds("iat"), seconds("exp")) else {
        return Err(invalid("its iat and exp must be whole seconds since 1970"));
    };
    if iat > now + LEEWAY_SECS as i64 {
        return Err(invalid("it was issued in the future (iat)"));
    }
    if exp.saturating_sub(iat) > ID_TOKEN_LIFETIME_MAX_SECS {
        return Err(invalid("it is valid for more than a day (exp − iat); CI ID tokens live minutes"));
    }
    let audiences: Vec<String> = match &claims["aud"] {
        Value::String(a) => vec![a.clone()],
        Value::Array(list) => list.iter().filter_map(|a| a.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    };

    let matching: Vec<&PolicyRow> = candidates.iter().filter(|p| matches(p, &audiences, &claims)).collect();
    if matching.is_empty() {
        let aud_known = candidates.iter().any(|p| audiences.contains(&p.policy.audience));
        return Err(no_policy(if aud_known {
            "No active trust policy of this workspace matches this job's claims (repository, ref, …)."
        } else {
            "No active trust policy of this workspace expects this token's audience (aud); request the ID token for the hub's URL."
        }));
    }
    // Each policy speaks for its creator: the first matching one whose creator, as it
    // stands now, could mint the token itself. A lapsed policy never blocks a good one.
    let mut lapsed = None;
    let mut chosen = None;
    for policy in matching {
        let why = match credential_now(&state.db, &policy.tenant_id, &policy.creator, now).await? {
            Err(Lapsed(why)) => why,
            Ok(cred) => match may_mint(&cred, &policy.policy, policy.project_ids.as_deref(), now) {
                Ok(reach) => {
                    chosen = Some((policy, reach));
                    break;
                }
                Err(e) => format!("whoever saved it may no longer mint its tokens ({})", e.message),
            },
        };
        lapsed.get_or_insert((policy.policy.name.clone(), why));
    }
    let Some((policy, reach)) = chosen else {
        let (name, why) = lapsed.unwrap_or_default();
        return Err(no_policy(&format!(
            "The trust policy \"{name}\" matches this job but mints nothing: {why}. An owner or admin saves it again to let it mint."
        )));
    };

    if !store::first_use_of(&state.db, &replay_key(&issuer, &claims), exp, now).await? {
        return Err(invalid("it was exchanged before (a replayed ID token)"));
    }

    let label = minted_for(&claims);
    let ip_allowlist = match &reach.addresses {
        Addresses::Any => String::new(),
        Addresses::Only(nets) => nets.iter().map(ToString::to_string).collect::<Vec<_>>().join(","),
    };
    let grant = CiGrant {
        tenant_id: &policy.tenant_id,
        policy_id: &policy.policy.id,
        policy_name: &policy.policy.name,
        scopes: &policy.policy.scopes,
        project_ids: policy.project_ids.as_deref(),
        expires_at: reach.expires_at.unwrap_or(now + i64::from(policy.policy.token_lifetime_minutes) * 60),
        ip_allowlist: &ip_allowlist,
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

    #[test]
    fn a_replay_key_names_the_token_not_its_bytes() {
        let a = json!({"iss": "i", "sub": "s", "iat": 5, "x": 1});
        let b = json!({"iss": "i", "sub": "s", "iat": 5, "x": 2});
        assert_eq!(replay_key("i", &a), replay_key("i", &b), "same issuer, subject and time");
        assert_ne!(replay_key("i", &a), replay_key("i", &json!({"sub": "s", "iat": 6})));
        assert_ne!(replay_key("i", &a), replay_key("j", &a));
        assert_ne!(replay_key("i", &json!({"jti": "1"})), replay_key("i", &json!({"jti": "2"})));
    }
}
