#!/usr/bin/env bash
# The main job: build the example plugins and the `corral` binary, register
# the plugins in the embedded SQLite default (target/demo/corral.db), apply
# the etl workflow (plugins/etl/workflow.toml) and run it end to end: extract
# reads plugins/etl/data/sales.csv, transform totals it per category, load
# writes plugins/etl/out/report.json. Then a peek at the sandbox at work.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --release --target wasm32-wasip2 --manifest-path plugins/Cargo.toml
cargo build --quiet -p corral

root=$PWD
corral=$root/target/debug/corral
wasm=$root/plugins/target/wasm32-wasip2/release
demo=$root/target/demo
rm -rf "$demo" && mkdir -p "$demo" "$root/plugins/etl/out"
cd "$demo"

echo "== register the plugins (database: $demo/corral.db)"
for plugin in hello etl chaos; do "$corral" plugin add "$wasm/$plugin.wasm"; done

echo "== apply the etl workflow"
"$corral" workflow apply "$root/plugins/etl/workflow.toml"
"$corral" workflow show etl

echo "== run it (the result is the output of its last step)"
"$corral" run etl
echo "== the report it wrote: plugins/etl/out/report.json"
cat "$root/plugins/etl/out/report.json"; echo

echo "== the execution, as stored"
id=$("$corral" executions --workflow etl --json | grep -m1 '"id"' | cut -d'"' -f4)
"$corral" status "$id"

echo "== one task on its own: hello/greet through corral invoke"
"$corral" invoke hello greet --input '{"name": "world"}'

echo "== the sandbox at work: a spinning task with a 300ms timeout"
set +e
"$corral" invoke chaos spin --timeout 300ms
echo "exit code $? (12 = timed out)"
