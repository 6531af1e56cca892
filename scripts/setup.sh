#!/usr/bin/env bash
# Installs every build and test dependency (Debian 12 packages), then configures
# and builds parallama into build/. Idempotent: packages already present are not
# reinstalled, and the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ cmake ninja-build ccache pkg-config git
  nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libspdlog-dev libfmt-dev libpcre2-dev libicu-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  python3 python3-numpy python3-pytest python3-jsonschema procps
  chromium  # the live view's browser test (tests/server/test_ui.py)
)

# Node.js (for the real-client tests): Debian's only where the machine has none, since
# another Node.js install (with its own npm) conflicts with Debian's nodejs/npm packages.
command -v node >/dev/null 2>&1 || packages+=(nodejs npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

jobs=${PARALLAMA_JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
ninja -C build -j "$jobs"
echo "setup.sh: built build/bin/parallama"
