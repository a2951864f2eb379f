#!/usr/bin/env bash
# Checks this folder's Prometheus files with promtool: the configuration,
# every rule file (syntax, and lint findings as errors), and every rule unit
# test under tests/. Each check is printed before it runs; all of them run
# even after a failure, so one run shows every problem, and the script exits
# non-zero if any failed. Works from any directory:
#
#   bash prometheus/check.sh
#
# Needs promtool, from the Debian package `prometheus`. CI checks with
# promtool 2.42, so the files here use only what 2.42 accepts.
set -euo pipefail

# Work from this folder. prometheus.yml names its rule files relative to
# itself, as Prometheus resolves them in the container (where this folder is
# /etc/prometheus), and each test file names its rule files relative to
# itself.
cd "$(dirname "${BASH_SOURCE[0]}")"

if ! command -v promtool > /dev/null; then
    echo "promtool not found; install it with: apt-get install prometheus" >&2
    exit 1
fi
promtool --version 2>&1 | head -n 1

passed=0
failed=0

# Runs one check: prints its title, runs the command, counts the outcome.
# A failure is counted rather than fatal, so that the other checks still run.
check() {
    local title=$1
    shift

    echo
    echo "--- ${title}"
    if "$@"; then
        passed=$((passed + 1))
    else
        echo "FAILED: ${title}"
        failed=$((failed + 1))
    fi
}

# An empty folder must fail loudly, not pass by checking nothing.
shopt -s nullglob
rule_files=(rules/*.yml)
test_files=(tests/*.yml)
if ((${#rule_files[@]} == 0 || ${#test_files[@]} == 0)); then
    echo "no rule files in rules/ or no test files in tests/" >&2
    exit 1
fi

check "configuration: prometheus.yml (and the rule files it loads)" \
    promtool check config prometheus.yml

for file in "${rule_files[@]}"; do
    check "rules: ${file}" promtool check rules --lint=all --lint-fatal "${file}"
done

# Each test of a file is an entry `- name:` of its `tests:` list; the count
# is printed so that a file which lost its tests does not pass unnoticed.
for file in "${test_files[@]}"; do
    tests=$(grep -c '^  - name:' "${file}" || true)
    check "rule tests: ${file} (${tests} tests)" promtool test rules "${file}"
done

echo
echo "checks: ${passed} passed, ${failed} failed"
((failed == 0))
