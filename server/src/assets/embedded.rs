//! The built site inside the binary (`embed-site`): the wasm bundle, its JavaScript, the
//! stylesheet and the public files, each with the brotli and gzip copies `--precompress`
//! made, served by `Accept-Encoding` with an `ETag`. cargo-leptos names the three bundle
//! files by three hashes; Leptos without a hash file asks for one name per build, so
//! they are served as `qahub.<build>.js`, `.wasm` and `.css`, `<build>` a hash of the
//! three, and cached for a year like any hashed name.

use std::{
    collections::HashMap,
    hash::{DefaultHasher, Hash, Hasher},
    sync::OnceLock,
};

use axum::{
    body::Body,
    extract::{Request, State},
    response::{IntoResponse, Response},
};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "$QAHUB_EMBED_SITE"]
struct SiteFolder;

/// cargo-leptos's hash file (`js: …`, `wasm: …`, `css: …`) of the embedded build.
const HASHES: &str = include_str!(env!("QAHUB_EMBED_HASHES"));

/// One file as served: its bytes and their precompressed copies.
#[derive(Debug)]
struct File {
    identity: Bytes,
    br: Option<Bytes>,
    gzip: Option<Bytes>,
    content_type: &'static str,
    etag: String,
}

#[derive(Debug)]
pub struct Files {
    /// What `qahub.<build>.*` is named by.
    pub build: String,
    by_path: HashMap<String, File>,
}

/// The embedded site, read once.
pub fn files() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(load)
}

fn bytes(path: &str) -> Option<Bytes> {
    SiteFolder::get(path).map(|file| match file.data {
        std::borrow::Cow::Borrowed(data) => Bytes::from_static(data),
        std::borrow::Cow::Owned(data) => Bytes::from(data),
    })
}

fn load() -> Files {
    let hashes: HashMap<&str, &str> =
        HASHES.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim(), v.trim())).collect();
    let mut hasher = DefaultHasher::new();
    for kind in ["js", "wasm", "css"] {
        hashes.get(kind).hash(&mut hasher);
    }
    let build = format!("{:016x}", hasher.finish());
    // pkg/qahub.<its hash>.js → pkg/qahub.<build>.js (and .wasm, .css)
    let renamed: HashMap<String, String> = ["js", "wasm", "css"]
        .into_iter()
        .filter_map(|kind| {
            let hash = hashes.get(kind)?;
            Some((format!("pkg/qahub.{hash}.{kind}"), format!("pkg/qahub.{build}.{kind}")))
        })
        .collect();
    let by_path = SiteFolder::iter()
        .filter(|path| !path.ends_with(".br") && !path.ends_with(".gz"))
        .filter_map(|path| {
            let identity = bytes(&path)?;
            let digest = SiteFolder::get(&path)?.metadata.sha256_hash();
            let etag = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            let file = File {
                br: bytes(&format!("{path}.br")),
                gzip: bytes(&format!("{path}.gz")),
                content_type: content_type(&path),
                identity,
                etag,
            };
            let served = renamed.get(path.as_ref()).cloned().unwrap_or_else(|| path.to_string());
            Some((served, file))
        })
        .collect();
    Files { build, by_path }
}

impl Files {
    pub fn has(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }

    /// The files outside `pkg/` (favicon, robots.txt).
    pub fn top_level(&self) -> impl Iterator<Item = &str> {
        self.by_path.keys().map(String::as_str).filter(|p| !p.starts_with("pkg/"))
    }

    fn answer(&self, path: &str, req: &Request) -> Response {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        let Some(file) = self.by_path.get(path) else { return StatusCode::NOT_FOUND.into_response() };
        let headers = req.headers();
        let (body, encoding) = if let (Some(br), true) = (&file.br, accepts(headers, "br")) {
            (br.clone(), Some("br"))
        } else if let (Some(gzip), true) = (&file.gzip, accepts(headers, "gzip")) {
            (gzip.clone(), Some("gzip"))
        } else {
            (file.identity.clone(), None)
        };
        let etag = format!("\"{}{}\"", file.etag, encoding.map(|e| format!("-{e}")).unwrap_or_default());
        let etag = HeaderValue::from_str(&etag).expect("hex digits and a coding name");
        let fresh = headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| tag.trim() == "*" || tag.trim().trim_start_matches("W/") == etag);
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut response = Body::from(body).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(file.content_type));
            if let Some(encoding) = encoding {
                response.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static(encoding));
            }
            response
        };
        let out = response.headers_mut();
        out.insert(header::ETAG, etag);
        out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        response
    }
}

/// `/pkg/…` (the router is nested there).
pub async fn pkg(State(files): State<&'static Files>, req: Request) -> Response {
    let path = format!("pkg/{}", req.uri().path().trim_start_matches('/'));
    files.answer(&path, &req)
}

/// `/favicon.svg` and the other top-level files; revalidated on each use.
pub async fn top_level(State(files): State<&'static Files>, req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/').to_string();
    let mut response = files.answer(&path, &req);
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Whether `Accept-Encoding` takes `coding` (its own q-value, else `*`'s; q=0 refuses).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    let mut own = None;
    let mut any = None;
    for item in
        headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or_default().trim();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q=").map(|q| q.trim().parse::<f32>().unwrap_or(0.0)))
            .unwrap_or(1.0);
        if name.eq_ignore_ascii_case(coding) {
            own = Some(q);
        } else if name == "*" {
            any = Some(q);
        }
    }
    own.or(any).is_some_and(|q| q > 0.0)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "wasm" => "application/wasm",
        "js" | "mjs" => "text/javascript",
        "css" => "text/css",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "json" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        HeaderMap::from_iter([(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap())])
    }

    #[test]
    fn accept_encoding_is_read_with_its_q_values() {
        assert!(accepts(&with("gzip, deflate, br, zstd"), "br"));
        assert!(!accepts(&with("gzip"), "br"));
        assert!(!accepts(&with("br;q=0, gzip"), "br"));
        assert!(accepts(&with("br;q=0.5"), "br"));
        assert!(accepts(&with("*"), "br"));
        assert!(!accepts(&with("*, br;q=0"), "br"));
        assert!(!accepts(&HeaderMap::new(), "gzip"));
    }

    #[test]
    fn the_bundle_is_served_under_one_build_name() {
        let files = files();
        for kind in ["js", "wasm", "css"] {
            assert!(files.has(&format!("pkg/qahub.{}.{kind}", files.build)), "{kind} missing");
        }
        assert!(files.top_level().any(|p| p == "favicon.svg"));
    }
}
