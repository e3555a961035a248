//! With the `embed-site` feature, finds the site cargo-leptos has just built (it builds
//! the site before the server and passes `LEPTOS_SITE_ROOT` and `LEPTOS_HASH_FILE_NAME`)
//! and tells `assets::embedded` where it is. Without the feature it does nothing.

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=LEPTOS_SITE_ROOT");
    println!("cargo:rerun-if-env-changed=LEPTOS_HASH_FILE_NAME");
    if std::env::var_os("CARGO_FEATURE_EMBED_SITE").is_none() {
        return;
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest.parent().unwrap();
    let site = workspace.join(std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into()));
    // cargo-leptos writes the hash file beside the binary: OUT_DIR is
    // <target>/<profile>/build/server-<hash>/out.
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let exe_dir = out.ancestors().nth(3).unwrap();
    let hashes = exe_dir.join(std::env::var("LEPTOS_HASH_FILE_NAME").unwrap_or_else(|_| "hash.txt".into()));
    let missing = |what: &Path| {
        panic!(
            "embed-site: {} is missing. Build the site first: `cargo leptos build --release \
             --precompress --bin-features embed-site` does it in the right order.",
            what.display()
        )
    };
    if !site.join("pkg").is_dir() {
        missing(&site.join("pkg"));
    }
    if !hashes.is_file() {
        missing(&hashes);
    }
    println!("cargo:rerun-if-changed={}", site.display());
    println!("cargo:rerun-if-changed={}", hashes.display());
    println!("cargo:rustc-env=QAHUB_EMBED_SITE={}", site.display());
    println!("cargo:rustc-env=QAHUB_EMBED_HASHES={}", hashes.display());
}
