#!/usr/bin/env bash
# Re-estimates every catalog phone with the current latency model (`tierforge profile estimate`), in place.
# Usage: scripts/regenerate_catalog.sh [BINARY]
set -euo pipefail
bin=${1:-target/release/tierforge}
cd "$(dirname "$0")/.."
for f in device-profiles/catalog/*.json; do
  tmp=$(mktemp "$f.XXXX")
  "$bin" profile estimate "$f" --json > "$tmp"
  mv "$tmp" "$f"
done
echo "re-estimated $(ls device-profiles/catalog/*.json | wc -l) phones; rebuild (the catalog is compiled in)"
