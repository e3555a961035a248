//! Uploads with no stored token: inside GitHub Actions (a job with `id-token: write`)
//! or GitLab CI (an `id_tokens:` variable), the job's OIDC ID token is exchanged at
//! `POST /api/v1/oidc/token` for a QA Hub token that lives minutes.

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::{ci::env, exit, fail, retry::Retry, Failure};

/// Where the job's ID token comes from.
pub enum Source {
    /// GitHub Actions: asked from the runner for `audience`.
    GitHub { request_url: String, request_token: String },
    /// GitLab CI (or any CI): already in an environment variable.
    Variable { name: String, value: String },
}

impl Source {
    pub fn from_env(variable: &str) -> Option<Source> {
        if let (Some(request_url), Some(request_token)) =
            (env("ACTIONS_ID_TOKEN_REQUEST_URL"), env("ACTIONS_ID_TOKEN_REQUEST_TOKEN"))
        {
            return Some(Source::GitHub { request_url, request_token });
        }
        env(variable).map(|value| Source::Variable { name: variable.to_string(), value })
    }

    fn describe(&self) -> String {
        match self {
            Source::GitHub { .. } => "this GitHub Actions job's OIDC identity".into(),
            Source::Variable { name, .. } => format!("the OIDC ID token in {name}"),
        }
    }

    fn id_token(&self, client: &Client, retry: &Retry, audience: &str) -> Result<String, Failure> {
        let (request_url, request_token) = match self {
            Source::Variable { value, .. } => return Ok(value.clone()),
            Source::GitHub { request_url, request_token } => (request_url, request_token),
        };
        let mut url = reqwest::Url::parse(request_url)
            .map_err(|e| fail(exit::USAGE, format!("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL: {e}")))?;
        url.query_pairs_mut().append_pair("audience", audience);
        let res = retry
            .run("asking GitHub for the job's ID token", || client.get(url.clone()).bearer_auth(request_token).send())
            .map_err(|crate::retry::GaveUp::Network(e)| {
                fail(exit::NETWORK, format!("cannot reach the GitHub Actions token service: {}", e.without_url()))
            })?;
        let status = res.status();
        let body: Value = res.json().unwrap_or(Value::Null);
        match body["value"].as_str() {
            Some(jwt) if status.is_success() => Ok(jwt.to_string()),
            _ => Err(fail(
                exit::UNAUTHORIZED,
                format!("GitHub gave no ID token ({status}): does the job have `permissions: id-token: write`?"),
            )),
        }
    }
}

/// The exchanged token and a line saying what happened.
pub fn exchange(
    client: &Client,
    retry: &Retry,
    base: &str,
    audience: &str,
    workspace: Option<&str>,
    source: &Source,
) -> Result<(String, String), Failure> {
    let id_token = source.id_token(client, retry, audience)?;
    let url = format!("{base}/api/v1/oidc/token");
    let mut body = json!({ "id_token": id_token });
    if let Some(workspace) = workspace {
        body["workspace"] = json!(workspace);
    }
    let res = retry.run("exchanging the OIDC token", || client.post(&url).json(&body).send()).map_err(
        |crate::retry::GaveUp::Network(e)| fail(exit::NETWORK, format!("cannot reach {base}: {}", e.without_url())),
    )?;
    let status = res.status();
    let body: Value = res.json().unwrap_or(Value::Null);
    if !status.is_success() {
        let code = body["error"]["code"].as_str().unwrap_or("unknown");
        let message = body["error"]["message"].as_str().unwrap_or("no details");
        let exit_code = match status.as_u16() {
            403 => exit::FORBIDDEN,
            422 => exit::USAGE,
            _ => exit::UNAUTHORIZED,
        };
        return Err(fail(
            exit_code,
            format!(
                "{} {code}: {message} (exchanging {}; set up Settings, Developer, Trusted CI)",
                status.as_u16(),
                source.describe()
            ),
        ));
    }
    let data = &body["data"];
    let token = data["token"].as_str().ok_or_else(|| fail(exit::SERVER, "the exchange answered no token"))?;
    let line = format!(
        "qa-hub: no QA_HUB_TOKEN: exchanged {} for a token valid until {} (trust policy {})",
        source.describe(),
        data["expires_at"].as_str().unwrap_or("?"),
        data["policy_id"].as_str().unwrap_or("?")
    );
    Ok((token.to_string(), line))
}
