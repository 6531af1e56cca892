#!/usr/bin/env bash
# The whole suite: GoogleTest (via ctest), the Python reference tests, and a
# bounded fuzz run of the GGUF reader. Runs every part, then fails if any did.
set -uo pipefail
cd "$(dirname "$0")/.."

python=/usr/bin/python3  # Debian's, which has numpy (a pyenv python may shadow it on PATH)
failed=()

echo "== ctest"
ctest --test-dir build --output-on-failure -j "$(nproc)" --timeout 900 || failed+=(ctest)

echo "== python reference tests"
PARALLAMA_BIN="$PWD/build/bin/parallama" "$python" -m pytest -q tests/reference || failed+=(pytest-reference)

echo "== HTTP API tests (a live parallama serve)"
PARALLAMA_BIN="$PWD/build/bin/parallama" "$python" -m pytest -q tests/server || failed+=(pytest-server)

echo "== the official ollama and openai JavaScript clients (from npm) against a live parallama serve"
if (cd tests/clients && npm ci --no-audit --no-fund --loglevel=error); then
  (cd tests/clients && PARALLAMA_BIN="$PWD/../../build/bin/parallama" node --test --test-concurrency=1) || failed+=(clients)
else
  failed+=(clients-npm-install)
fi

echo "== fuzz (GGUF reader)"
./scripts/fuzz.sh "${PARALLAMA_FUZZ_SECONDS:-60}" || failed+=(fuzz)

if [ ${#failed[@]} -gt 0 ]; then
  echo "test.sh: FAILED: ${failed[*]}"
  exit 1
fi
echo "test.sh: all suites passed"
