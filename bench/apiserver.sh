#!/usr/bin/env bash
# API server benchmark: start-up time, RSS with 10,000 Services and
# Endpoints, create throughput and write-to-watch latency, against real
# `wharf up` processes on 127.0.0.1 (bench/apiserver/apiserver_test.go).
# Run from anywhere; `make bench` builds bin/wharf first and calls this.
# It takes a few minutes on a 2-core machine and prints a table at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

# Reuse bin/wharf when it is there (make bench builds it); otherwise the
# framework builds the binary itself with $WHARF_LDFLAGS.
if [ -z "${WHARF_BIN:-}" ] && [ -x bin/wharf ]; then
	export WHARF_BIN="$PWD/bin/wharf"
fi

out=$(mktemp)
trap 'rm -f "$out"' EXIT
export WHARF_BENCH=1 WHARF_BENCH_OUT="$out"

echo "== go test -count=1 -v -run '^TestAPIServerBench\$' ./bench/apiserver (progress below, table at the end)"
status=0
go test -count=1 -timeout 20m -v -run '^TestAPIServerBench$' ./bench/apiserver || status=$?

echo
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')   date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
if [ -s "$out" ]; then
	cat "$out"
else
	echo "no results table (the benchmark failed before the end; see above)"
fi
exit "$status"
