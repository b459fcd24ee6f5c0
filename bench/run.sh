#!/usr/bin/env bash
# Regenerates docs/BENCHMARKS.md: every scenario of bench/cmd/benchall (see
# its doc), about 9 minutes on 2 cores. Arguments go to benchall:
#
#   bash bench/run.sh              # the whole run
#   bash bench/run.sh -quick -out -   # a smoke test, printed
set -euo pipefail
cd "$(dirname "$0")"
exec go run ./cmd/benchall "$@"
