#!/usr/bin/env bash
# Checks the Grafana part of the stack without a Grafana server:
#
#   1. the pinned Grafana (VERSION) and the @grafana/schema package agree;
#   2. the reader of PromQL used below passes its own tests;
#   3. every dashboard type-checks against the schema's Dashboard type and
#      its panels against their plugins' option types (tsc --strict);
#   4. every query parses as PromQL (promtool check rules; skipped without
#      promtool);
#   5. cross-checks: datasource uids are provisioned; house style (uid, tags,
#      no numeric id, title, description, unit, legendFormat, rates over
#      $__rate_interval); every metric a query reads is one the service
#      exports, in the dashboards and in the Prometheus rules if present.
#
# Usage: bash grafana/check.sh [EXPOSITION_FILE]
#
# The exported metrics come from EXPOSITION_FILE (argument or environment
# variable), a saved /metrics answer. Without one, the api service is built
# with cargo, started on a free local port with a throw-away database, and
# scraped; API_BIN names a binary to start instead of building one.
# Needs Node 20 and npm (the npm registry, for `npm ci`), and cargo unless an
# exposition or API_BIN is given. Exits non-zero on the first failing step.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
checks="$here/check"
exposition="${1:-${EXPOSITION_FILE:-}}"

workdir="$(mktemp -d)"
api_pid=""

# Stops the service if this script started it and it still runs, whatever
# made the script end, and removes the scratch folder.
cleanup() {
    if [[ -n $api_pid ]] && kill -0 "$api_pid" 2> /dev/null; then
        kill "$api_pid"
        wait "$api_pid" || true
    fi
    rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() {
    printf '\n--- %s\n' "$*"
}

die() {
    echo "check.sh: $*" >&2
    exit 1
}

# Builds (or takes) the api binary, runs it until /metrics answers, saves the
# answer as $workdir/metrics.txt, and stops it again.
scrape_service() {
    local bin="${API_BIN:-}"
    if [[ -z $bin ]]; then
        command -v cargo > /dev/null || die "no cargo: give an EXPOSITION_FILE or API_BIN"
        # --locked: the check must never rewrite Cargo.lock.
        (cd "$root" && cargo build -p api --locked)
        bin="${CARGO_TARGET_DIR:-$root/target}/debug/api"
    fi
    [[ -x $bin ]] || die "$bin is not an executable"

    # A port the kernel has just handed out and released; should another
    # process take it first, the service exits and scrape.mjs says so.
    local port
    port="$(node -e 'const s = require("node:net").createServer();
        s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')"

    # METRICS_PORT is cleared so that /metrics stays on the public port.
    env -u METRICS_PORT PORT="$port" BIND_ADDRESS=127.0.0.1 \
        DATABASE_URL="sqlite://$workdir/api.db" LOG_FORMAT=json \
        "$bin" > "$workdir/api.log" 2>&1 &
    api_pid=$!
    echo "started $bin on 127.0.0.1:$port (pid $api_pid)"

    if ! node "$checks/scrape.mjs" "http://127.0.0.1:$port/metrics" \
        "$workdir/metrics.txt" 30 "$api_pid"; then
        echo "service log:" >&2
        cat "$workdir/api.log" >&2
        exit 1
    fi

    kill "$api_pid"
    wait "$api_pid" || die "the service did not stop cleanly; log: $(cat "$workdir/api.log")"
    api_pid=""
    echo "stopped the service"
}

step "pinned versions"
grafana_version="$(tr -d '[:space:]' < "$here/VERSION")"
[[ $grafana_version =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] ||
    die "grafana/VERSION holds '$grafana_version', not a release tag like 12.1.1"
echo "grafana/grafana:$grafana_version"

step "npm ci (grafana/check)"
(cd "$checks" && npm ci --no-audit --no-fund --loglevel=error)
schema_version="$(node -p 'require(process.argv[1]).version' \
    "$checks/node_modules/@grafana/schema/package.json")"
echo "@grafana/schema $schema_version, typescript $("$checks/node_modules/.bin/tsc" --version)"
[[ ${schema_version%%.*} == "${grafana_version%%.*}" ]] ||
    die "@grafana/schema $schema_version is not of Grafana's major version $grafana_version"

step "PromQL reader tests"
(cd "$checks" && node --test --test-reporter=spec promql.test.mjs)

step "type check: dashboards against @grafana/schema $schema_version"
dashboards=("$here"/dashboards/*.json)
[[ -e ${dashboards[0]} ]] || die "no dashboards in $here/dashboards"
(cd "$checks" && node generate.mjs build "${dashboards[@]}")
(cd "$checks" && node_modules/.bin/tsc --strict --noEmit --project tsconfig.json)
echo "tsc --strict --noEmit: no errors (dashboards, panel options, canary.ts)"

step "PromQL syntax of every dashboard query"
if command -v promtool > /dev/null; then
    node "$checks/queries-as-rules.mjs" "${dashboards[@]}" > "$workdir/queries.yml"
    promtool check rules --lint-fatal "$workdir/queries.yml"
else
    echo "skipped: no promtool (Debian package prometheus)"
fi

step "exported metrics"
if [[ -z $exposition ]]; then
    scrape_service
    exposition="$workdir/metrics.txt"
fi
[[ -s $exposition ]] || die "exposition file '$exposition' is missing or empty"
echo "reading metric names from $exposition"

step "cross-checks"
rules=()
if [[ -d $root/prometheus/rules ]]; then
    rules=(--rules "$root/prometheus/rules")
else
    echo "no prometheus/rules folder: rule expressions not checked"
fi
node "$checks/crosscheck.mjs" \
    --exposition "$exposition" \
    --dashboards "$here/dashboards" \
    --provisioning "$here/provisioning" \
    --grafana-version "$grafana_version" \
    "${rules[@]}"

printf '\nall Grafana checks passed\n'
