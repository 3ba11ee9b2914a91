#!/usr/bin/env bash
# Installs every Debian package cdc needs to build, run its demo and run its
# tests; with --build-only, only what `make` needs (the Dockerfile's build
# stage uses that).  Without it also the pinned npm packages the lakehouse
# tests read cdc's files with (tests/js/node_modules).  Idempotent: skips
# apt when everything is already present, and npm when node_modules
# matches the lock file.
set -euo pipefail

BUILD_PKGS=(
  # `make`: compiler and the libraries' headers
  build-essential pkg-config
  libpq-dev libyaml-dev libcurl4-openssl-dev libsqlite3-dev libssl-dev
  librdkafka-dev libmariadb-dev libnats-dev libzstd-dev libsnappy-dev zlib1g-dev
)
TEST_PKGS=(
  # format check, fuzzing, unit tests
  clang clang-format libcmocka-dev
  # servers and clients the demo and the tests start
  postgresql-15 postgresql-client-15 postgresql-contrib
  mariadb-server mariadb-client nats-server
  # test harness
  python3 python3-psycopg2 python3-yaml kcat sqlite3 procps psmisc curl
  # packaging checks (tests/integration/test_packaging.py): man page, shell
  # completion, scripts, YAML, systemd unit
  groff-base man-db zsh shellcheck yamllint systemd
)
# node and npm run the lakehouse tests' readers; a machine may have them from
# elsewhere (NodeSource), which Debian's packages would conflict with.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  TEST_PKGS+=(nodejs npm)
fi

# The npm packages, pinned by tests/js/package-lock.json, into tests/js only.
# npm ci records what it installed in node_modules/.package-lock.json: when
# that is newer than the lock file, the install is current.
install_js() {
  local js
  js="$(cd "$(dirname "$0")/.." && pwd)/tests/js"
  if [ -f "$js/node_modules/.package-lock.json" ] &&
     [ "$js/node_modules/.package-lock.json" -nt "$js/package-lock.json" ]; then
    return 0
  fi
  echo "installing npm packages into tests/js/node_modules" >&2
  npm ci --prefix "$js" --no-audit --no-fund --loglevel=error >/dev/null
}

with_js=1
case "${1:-}" in
  "") PKGS=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}") ;;
  --build-only) PKGS=("${BUILD_PKGS[@]}"); with_js=0 ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  [ "$with_js" = 0 ] || install_js
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package starts a cluster on port 5432; cdc's demo and tests start
# their own throwaway clusters and never use it.
[ "$with_js" = 0 ] || install_js
