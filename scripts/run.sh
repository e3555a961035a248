#!/usr/bin/env bash
# Installs what is missing, builds QA Hub and serves it on http://127.0.0.1:3000 with
# SQLite (qahub.db in this folder). Extra arguments go to `qahub serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PWD/end2end/node_modules/.bin:$PATH"
QAHUB_SKIP_BROWSER=1 scripts/setup.sh
# --precompress: brotli and gzip copies of the bundle, served to browsers that accept them;
# embed-site puts the built site inside the binary, so target/release/qahub is all a
# server needs (README, "Deploying").
started=$SECONDS
echo "run: building the release (minutes the first time: BENCHMARKS.md, \"The first run on a fresh machine\"; seconds after)" >&2
cargo leptos build --release --precompress --bin-features embed-site
echo "run:   built in $((SECONDS - started)) s" >&2
exec target/release/qahub serve "$@"
