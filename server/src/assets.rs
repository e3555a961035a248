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

use std::{
    collections::{HashMap, HashSet},
    path::{Path, PathBuf},
    sync::Arc,
};

#[cfg(feature = "embed-site")]
pub mod embedded;

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

/// Where the pages' files come from: a folder (`LEPTOS_SITE_ROOT`, what `cargo leptos
/// build` writes), or the binary itself when it was built with `embed-site` and no
/// folder is named.
#[derive(Clone, Debug)]
pub enum Site {
    Folder {
        root: PathBuf,
        hash_file: Option<PathBuf>,
    },
    #[cfg(feature = "embed-site")]
    Embedded(&'static embedded::Files),
}

impl Site {
    /// The named folder; else the embedded site if there is one; else `target/site`.
    pub fn choose(root: Option<PathBuf>) -> Self {
        match root {
            Some(root) => Self::Folder { root, hash_file: default_hash_file() },
            #[cfg(feature = "embed-site")]
            None => Self::Embedded(embedded::files()),
            #[cfg(not(feature = "embed-site"))]
            None => Self::Folder { root: "target/site".into(), hash_file: default_hash_file() },
        }
    }

    /// Leptos's options for this site: the names the pages reference.
    pub fn leptos_options(&self, listen: std::net::SocketAddr) -> leptos::prelude::LeptosOptions {
        let builder = leptos::prelude::LeptosOptions::builder().site_pkg_dir("pkg").site_addr(listen);
        match self {
            // Leptos reads the hashed names from hash.txt beside the binary, as cargo-leptos wrote it.
            Self::Folder { root, hash_file } => builder
                .output_name("qahub")
                .site_root(root.to_string_lossy().to_string())
                .hash_files(hash_file.is_some())
                .build(),
            // One name for the three files (`qahub.<build>.js`, `.wasm`, `.css`), from
            // the hashes built in; no folder is read (site_root names none that exists).
            #[cfg(feature = "embed-site")]
            Self::Embedded(files) => {
                builder.output_name(format!("qahub.{}", files.build)).site_root(String::new()).hash_files(false).build()
            }
        }
    }

    /// The `/pkg` paths the pages will ask for (the script, the wasm, the stylesheet).
    pub fn referenced(&self) -> Vec<String> {
        let options = self.leptos_options("127.0.0.1:0".parse().unwrap());
        let mut names = HashMap::from([
            ("js", format!("{}.js", options.output_name)),
            // What Leptos asks for without hashes: `qahub.wasm` when built by cargo-leptos.
            ("wasm", format!("{}{}.wasm", options.output_name, wasm_suffix())),
            ("css", format!("{}.css", options.output_name)),
        ]);
        if let Self::Folder { hash_file: Some(file), .. } = self {
            let hashes = std::fs::read_to_string(file).unwrap_or_default();
            for (kind, hash) in hashes.lines().filter_map(|l| l.split_once(':')) {
                if let Some(name) = names.get_mut(kind.trim()) {
                    *name = format!("{}.{}.{}", options.output_name, hash.trim(), kind.trim());
                }
            }
        }
        let mut names: Vec<String> = names.into_values().collect();
        names.sort();
        names
    }

    /// Refuses a site the pages would break on: every file they reference must be there.
    pub fn check(&self) -> anyhow::Result<()> {
        let missing: Vec<String> = self
            .referenced()
            .into_iter()
            .filter(|name| match self {
                Self::Folder { root, .. } => !root.join("pkg").join(name).is_file(),
                #[cfg(feature = "embed-site")]
                Self::Embedded(files) => !files.has(&format!("pkg/{name}")),
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let place = match self {
            Self::Folder { root, .. } => format!("{} (LEPTOS_SITE_ROOT)", root.join("pkg").display()),
            #[cfg(feature = "embed-site")]
            Self::Embedded(_) => "the files built into this binary".to_string(),
        };
        anyhow::bail!(
            "the pages would load without their files: {} missing from {place}. Build the site \
             (`cargo leptos build --release --precompress`, or `scripts/run.sh`), point LEPTOS_SITE_ROOT at \
             a built one, or use a binary built with it inside (`--bin-features embed-site`); the hash file \
             cargo-leptos writes (hash.txt) must sit beside the binary that serves a folder.",
            missing.join(", ")
        )
    }

    /// `/pkg`: precompressed variants by `Accept-Encoding`, cached by name.
    pub fn pkg_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let hashed = match self {
            Self::Folder { hash_file, .. } => {
                hash_file.as_deref().map(|f| Hashed::load(f, "qahub")).unwrap_or_default()
            }
            #[cfg(feature = "embed-site")]
            Self::Embedded(_) => Hashed(Arc::new(self.referenced().into_iter().collect())),
        };
        let router = match self {
            Self::Folder { root, .. } => {
                Router::new().fallback_service(ServeDir::new(root.join("pkg")).precompressed_br().precompressed_gzip())
            }
            #[cfg(feature = "embed-site")]
            Self::Embedded(files) => Router::new().fallback(embedded::pkg).with_state(*files),
        };
        router.layer(axum::middleware::from_fn_with_state(hashed, cache_by_name))
    }

    /// The files at the top of the site (`/favicon.svg`, `/robots.txt`) for an embedded
    /// site; a folder's are served by Leptos's fallback.
    pub fn top_level_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        match self {
            Self::Folder { .. } => Router::new(),
            #[cfg(feature = "embed-site")]
            Self::Embedded(files) => files.top_level().fold(Router::new(), |router, path| {
                router.route(&format!("/{path}"), axum::routing::get(embedded::top_level).with_state(*files))
            }),
        }
    }
}

/// Leptos appends `_bg` to the wasm's name unless cargo-leptos built it.
fn wasm_suffix() -> &'static str {
    if option_env!("LEPTOS_OUTPUT_NAME").is_some() {
        ""
    } else {
        "_bg"
    }
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
