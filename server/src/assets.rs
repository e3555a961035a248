//! The files a browser downloads, and how every response is compressed.
//!
//! `/pkg` holds the wasm bundle, its JavaScript glue and the stylesheet. With
//! `hash-files` cargo-leptos names them after their content (`qahub.<hash>.wasm`) and
//! lists the hashes in `hash.txt` next to the binary; those names never change content,
//! so they are cached for a year, and anything else under `/pkg` is revalidated on each
//! use. A release build made with `--precompress` ships brotli and gzip copies beside
//! each file, and `ServeDir` picks the one the browser accepts.
//!
//! Pages and JSON are compressed on the fly, except a response that carries a secret:
//! compressing a secret next to text an attacker chooses (a token name) lets the
//! compressed length reveal it (BREACH). Such responses say `Cache-Control: no-store,
//! no-transform` ([`SecretBearing`]), which this layer and any proxy honour.

use std::{collections::HashSet, path::Path, sync::Arc};

use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
    Router,
};
use http::{header, HeaderMap, HeaderValue};
use tower_http::{
    compression::{
        predicate::{NotForContentType, Predicate, SizeAbove},
        CompressionLayer, CompressionLevel,
    },
    services::ServeDir,
};

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");
/// Marks a response that carries a secret: never stored, never compressed.
pub fn secret_bearing(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, app::server_fn_ctx::SECRET_BEARING);
}

/// A response that carries a secret: see [`secret_bearing`].
pub struct SecretBearing<R>(pub R);

impl<R: axum::response::IntoResponse> axum::response::IntoResponse for SecretBearing<R> {
    fn into_response(self) -> Response {
        let mut response = self.0.into_response();
        secret_bearing(response.headers_mut());
        response
    }
}

/// The file names under `/pkg` that carry the build's content hash.
#[derive(Clone, Debug, Default)]
pub struct Hashed(Arc<HashSet<String>>);

impl Hashed {
    /// Reads cargo-leptos's `hash.txt` (`js: <hash>` lines); none when there is no file.
    pub fn load(hash_file: &Path, output_name: &str) -> Self {
        let Ok(text) = std::fs::read_to_string(hash_file) else { return Self::default() };
        let names = text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .filter_map(|(kind, hash)| {
                let ext = match kind.trim() {
                    "js" => "js",
                    "wasm" => "wasm",
                    "css" => "css",
                    _ => return None,
                };
                let hash = hash.trim();
                (!hash.is_empty()).then(|| format!("{output_name}.{hash}.{ext}"))
            })
            .collect();
        Self(Arc::new(names))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn contains(&self, path: &str) -> bool {
        path.rsplit('/').next().is_some_and(|name| self.0.contains(name))
    }
}

/// `hash.txt` where cargo-leptos writes it and Leptos reads it: beside the binary.
pub fn default_hash_file() -> Option<std::path::PathBuf> {
    let path = std::env::current_exe().ok()?.parent()?.join("hash.txt");
    path.exists().then_some(path)
}

/// `/pkg`: precompressed variants by `Accept-Encoding`, cached by name.
pub fn pkg_router<S: Clone + Send + Sync + 'static>(site_root: &Path, hashed: Hashed) -> Router<S> {
    let files = ServeDir::new(site_root.join("pkg")).precompressed_br().precompressed_gzip();
    Router::new().fallback_service(files).layer(axum::middleware::from_fn_with_state(hashed, cache_by_name))
}

async fn cache_by_name(State(hashed): State<Hashed>, req: Request, next: Next) -> Response {
    let immutable = hashed.contains(req.uri().path());
    let mut response = next.run(req).await;
    if response.status().is_success() || response.status() == http::StatusCode::NOT_MODIFIED {
        let value = if immutable { IMMUTABLE } else { REVALIDATE };
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, value);
        // The body depends on Accept-Encoding (a precompressed copy or not): caches must know.
        if !headers.contains_key(header::VARY) {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
    }
    response
}

/// Pages are rendered for the person signed in: unless a page says otherwise, no cache
/// (the browser's or a proxy's) may keep one.
pub async fn pages_not_stored(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let html =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"));
    if html && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Compresses what is worth it and is not secret-bearing; leaves precompressed files be.
pub fn compression() -> CompressionLayer<impl Predicate> {
    let predicate = SizeAbove::new(256)
        .and(NotForContentType::GRPC)
        .and(NotForContentType::IMAGES)
        .and(NotForContentType::SSE)
        .and(NotSecretBearing);
    // brotli 4 / gzip 4: most of the gain at a small cost per page.
    CompressionLayer::new().quality(CompressionLevel::Precise(4)).compress_when(predicate)
}

#[derive(Clone, Copy)]
struct NotSecretBearing;

impl Predicate for NotSecretBearing {
    fn should_compress<B: http_body::Body>(&self, response: &http::Response<B>) -> bool {
        !response
            .headers()
            .get_all(header::CACHE_CONTROL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|directive| directive.trim().eq_ignore_ascii_case("no-transform"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_names_come_from_hash_txt() {
        let dir = std::env::temp_dir().join(format!("qahub-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("hash.txt");
        std::fs::write(&file, "js: abc\nwasm: def\ncss: ghi\nmanifest: x\n").unwrap();
        let hashed = Hashed::load(&file, "qahub");
        assert!(hashed.contains("/pkg/qahub.def.wasm"));
        assert!(hashed.contains("/qahub.ghi.css"));
        assert!(!hashed.contains("/pkg/qahub.wasm"));
        assert!(!hashed.contains("/pkg/qahub.x.json"));
        assert!(Hashed::load(&dir.join("missing.txt"), "qahub").is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
