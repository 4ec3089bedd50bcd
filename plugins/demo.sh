#!/usr/bin/env bash
# The main job: build the example plugins and the `corral` binary, register
# the plugins in the embedded SQLite default (target/demo/corral.db), greet,
# then run the etl pipeline extract -> transform -> load through `corral invoke`
# with real directory grants.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml
cargo build --quiet -p corral

root=$PWD
corral=$root/target/debug/corral
wasm=$root/plugins/target/wasm32-wasip2/release
demo=$root/target/demo
rm -rf "$demo" && mkdir -p "$demo/out"
cd "$demo"

echo "== register the plugins (database: $demo/corral.db)"
for plugin in hello etl chaos; do "$corral" plugin add "$wasm/$plugin.wasm"; done
"$corral" plugin list

echo "== hello/greet"
"$corral" invoke hello greet --input '{"name": "world"}'

grants=(--dir "$root/plugins/etl/data:/data" --dir "$demo/out:/out:rw")
echo "== etl/extract (reads /data/sales.csv)"
"$corral" invoke etl extract "${grants[@]}" > rows.json
echo "$(grep -c '"category"' rows.json) rows extracted"
echo "== etl/transform"
"$corral" invoke etl transform --input-file rows.json "${grants[@]}" > totals.json
echo "== etl/load (writes /out/report.json)"
"$corral" invoke etl load --input-file totals.json "${grants[@]}"
echo "== the report on the host: $demo/out/report.json"
cat "$demo/out/report.json"; echo

echo "== the sandbox at work: a spinning task with a 300ms timeout"
set +e
"$corral" invoke chaos spin --timeout 300ms
echo "exit code $? (12 = timed out)"
