#!/usr/bin/env bash
# Prints what a first visit downloads from /pkg (wasm, JavaScript glue, stylesheet): raw,
# and brotli / gzip as a release build precompressed them. Fails when the brotli total
# passes the budget, so the bundle cannot grow unnoticed.
#
#   scripts/bundle-size.sh [SITE_ROOT] [BUDGET_BYTES]
set -euo pipefail
cd "$(dirname "$0")/.."
site=${1:-target/site}
budget=${2:-${QAHUB_BUNDLE_BUDGET:-450000}}

total_raw=0 total_br=0 total_gz=0
printf '%-42s %10s %10s %10s\n' file raw brotli gzip
for f in "$site"/pkg/qahub.*.wasm "$site"/pkg/qahub.*.js "$site"/pkg/qahub.*.css; do
  [ -f "$f" ] || { echo "bundle-size: no $f (build with cargo leptos build --release --precompress)" >&2; exit 1; }
  [ -f "$f.br" ] && [ -f "$f.gz" ] || { echo "bundle-size: $f has no .br/.gz (use --precompress)" >&2; exit 1; }
  raw=$(stat -c %s "$f"); br=$(stat -c %s "$f.br"); gz=$(stat -c %s "$f.gz")
  printf '%-42s %10d %10d %10d\n' "$(basename "$f")" "$raw" "$br" "$gz"
  total_raw=$((total_raw + raw)) total_br=$((total_br + br)) total_gz=$((total_gz + gz))
done
printf '%-42s %10d %10d %10d\n' "first visit" "$total_raw" "$total_br" "$total_gz"
if [ "$total_br" -gt "$budget" ]; then
  echo "bundle-size: $total_br bytes of brotli is over the budget of $budget" >&2
  exit 1
fi
echo "bundle-size: within the budget of $budget bytes (brotli)"
