#!/usr/bin/env bash
# install-deps.sh: installs every Debian package and npm module that
# Laminar's build, tests and benchmarks need. Idempotent: a second run
# installs nothing. `--check` only reports (exit 1) whether anything is
# missing; the Makefile calls it before every build and runs the full
# script, as root or through sudo, when it says so.
set -euo pipefail

# Build: compiler, pkg-config and the libraries of the design card, plus
# jansson (plans in JSON) and xxhash (shuffles, hash tables).
# Tests: Check (and its subunit dependency), clang with libFuzzer's runtime
# for the fuzz targets, clang-format for the formatting check, Node.js and
# npm for DuckDB, the batch oracle the engine's results are checked against.
# Metadata store: libsqlite3 (embedded) and libpq to build; the PostgreSQL
# server, whose initdb and pg_ctl the metastore suite runs on loopback.
APT_PACKAGES=(
  build-essential pkg-config
  libevent-dev libnng-dev libmsgpack-dev libzstd-dev libyaml-dev
  libjansson-dev libxxhash-dev libsqlite3-dev libpq-dev
  postgresql
  check libsubunit-dev
  clang libclang-rt-14-dev clang-format
  iproute2 procps
)

# Node.js and npm are checked as commands, not packages: a machine may have
# them from elsewhere (NodeSource's nodejs bundles npm and conflicts with
# Debian's npm package). Debian's packages are the fallback.

# npm modules, installed into test/oracle/node_modules (see its package.json).
NPM_DIR="$(cd "$(dirname "$0")/.." && pwd)/test/oracle"

missing_apt() {
  local p
  for p in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      echo "$p"
    fi
  done
  command -v node >/dev/null 2>&1 || echo nodejs
  command -v npm >/dev/null 2>&1 || echo npm
}

missing_npm() {
  [ -f "$NPM_DIR/package.json" ] || return 0
  if [ ! -d "$NPM_DIR/node_modules/@duckdb/node-api" ]; then
    echo "@duckdb/node-api"
  fi
}

apt_missing=$(missing_apt)
npm_missing=$(missing_npm)

if [ "${1:-}" = "--check" ]; then
  if [ -n "$apt_missing" ] || [ -n "$npm_missing" ]; then
    echo "missing:" $apt_missing $npm_missing >&2
    exit 1
  fi
  exit 0
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "install-deps: need root (or sudo) to run: $*" >&2
    exit 1
  fi
}

if [ -n "$apt_missing" ]; then
  echo "install-deps: installing" $apt_missing
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  # shellcheck disable=SC2086
  as_root apt-get install -y -qq --no-install-recommends $apt_missing
fi
if [ -n "$(missing_npm)" ]; then
  echo "install-deps: installing npm modules in $NPM_DIR"
  (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error)
fi
echo "install-deps: all dependencies present"
