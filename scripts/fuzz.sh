#!/usr/bin/env bash
# Bounded libFuzzer runs (ASan + UBSan) of the GGUF reader, seeded from ../shared/testdata, of the
# chat template engines, seeded from tests/chat, and of structured output's schema compiler and matcher
# with the tool-call parsers, seeded from tests/grammar, and of the runner's request parsers, seeded from
# tests/runner. The time is split between the four targets.
# Usage: scripts/fuzz.sh [SECONDS]   (default 60, in total)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
quarter=$(( seconds / 4 > 0 ? seconds / 4 : 1 ))
chat_seconds=$quarter
format_seconds=$quarter
runner_seconds=$quarter
gguf_seconds=$(( seconds - 3 * quarter > 0 ? seconds - 3 * quarter : 1 ))
build=build-fuzz
if ! command -v clang++ >/dev/null; then
  echo "fuzz.sh: clang++ not found (scripts/setup.sh installs it)" >&2
  exit 1
fi
CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPARALLAMA_FUZZ=ON -DPARALLAMA_TESTS=OFF -DPARALLAMA_BENCH=OFF -DPARALLAMA_SANITIZE=ON >/dev/null
ninja -C "$build" fuzz_gguf fuzz_chat_template fuzz_format fuzz_runner_json >/dev/null

# fuzz TARGET CORPUS SECONDS WHAT [libFuzzer flags...]: one bounded run, its final stats printed.
# A crash fails the script (pipefail): libFuzzer exits non-zero and leaves the input in the current folder.
fuzz() {
  local target=$1 dir=$2 secs=$3 what=$4
  shift 4
  echo "fuzz.sh: fuzzing $what for ${secs}s"
  "$build/bin/$target" "$dir" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 "$@" 2>&1 | tail -n 15
}

corpus="$build/corpus"
mkdir -p "$corpus"
testdata=../shared/testdata
if [ -d "$testdata" ]; then
  # Seeds: the head of every real GGUF (header, metadata, tensor table) and the small model whole.
  for f in "$testdata"/models/*.gguf "$testdata"/vocab/*.gguf; do
    head -c 65536 "$f" >"$corpus/seed-$(basename "$f")"
  done
  cp "$testdata/models/stories260K.gguf" "$corpus/full-stories260K.gguf"
else
  echo "fuzz.sh: $testdata not found, fuzzing from the regression inputs only"
fi
# Inputs that once failed stay in the corpus for good.
cp tests/gguf/fuzz_regressions/* "$corpus/"
fuzz fuzz_gguf "$corpus" "$gguf_seconds" "the GGUF reader" -max_len=1200000

# Chat templates: the real templates of the tests and small seeds of each feature.
chat_corpus="$build/corpus-chat"
mkdir -p "$chat_corpus"
cp tests/chat/templates/* tests/chat/fuzz_seeds/*.jinja tests/chat/fuzz_seeds/*.gotmpl "$chat_corpus/"
fuzz fuzz_chat_template "$chat_corpus" "$chat_seconds" "the chat template engines" \
  -dict=tests/chat/fuzz_seeds/chat_template.dict -max_len=16384

# Structured output: JSON schemas (each seed: a schema, a NUL byte, a text to match) and tool-call outputs.
format_corpus="$build/corpus-format"
mkdir -p "$format_corpus"
cp tests/grammar/fuzz_seeds/* "$format_corpus/"
fuzz fuzz_format "$format_corpus" "$format_seconds" "the JSON-schema compiler, its matcher and the tool-call parsers" \
  -max_len=16384 -timeout=20

# The runner's request parsers: every endpoint's body, with the Llama 2 vocabulary from ../shared/testdata.
runner_corpus="$build/corpus-runner"
mkdir -p "$runner_corpus"
cp tests/runner/fuzz_seeds/* "$runner_corpus/"
fuzz fuzz_runner_json "$runner_corpus" "$runner_seconds" "the runner's request parsers" -max_len=4096 -timeout=20
