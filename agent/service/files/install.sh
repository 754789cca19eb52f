#!/bin/sh
# Borealis Agent installer for Linux and macOS (served by the engine at
# /api/agent/install.sh). Usage, as root:
#   sh install.sh --server URL --token TOKEN --version V --manifest-sha256 HEX [--hostname NAME]
# It downloads the package for this machine from the engine, checks the manifest
# against the SHA-256 in the install command and every file against the manifest,
# then hands over to the agent's own `install` (signature check, files, service,
# enrollment). BOREALIS_AGENT_ROOT=<dir> installs under <dir> without root;
# BOREALIS_AGENT_FOREGROUND=1 runs the agent in the foreground instead of a service.
set -eu

SERVER=""; TOKEN=""; VERSION=""; MANIFEST_SHA=""; HOSTNAME_ARG=""
while [ $# -gt 0 ]; do
  case "$1" in
    --server) SERVER="$2"; shift 2 ;;
    --token) TOKEN="$2"; shift 2 ;;
    --version) VERSION="$2"; shift 2 ;;
    --manifest-sha256) MANIFEST_SHA="$2"; shift 2 ;;
    --hostname) HOSTNAME_ARG="$2"; shift 2 ;;
    *) echo "borealis-agent install: unknown option $1" >&2; exit 2 ;;
  esac
done
fail() { echo "borealis-agent install: $*" >&2; exit 1; }
[ -n "$SERVER" ] && [ -n "$TOKEN" ] && [ -n "$VERSION" ] && [ -n "$MANIFEST_SHA" ] ||
  fail "--server, --token, --version and --manifest-sha256 are required"
case "$VERSION" in *[!0-9A-Za-z.+-]*) fail "bad version $VERSION" ;; esac
SERVER="${SERVER%/}"

if [ -z "${BOREALIS_AGENT_ROOT:-}" ] && [ "$(id -u)" -ne 0 ]; then
  fail "run as root (or set BOREALIS_AGENT_ROOT=<dir> for an unprivileged trial)"
fi

case "$(uname -s)" in
  Linux) OS=linux ;;
  Darwin) OS=darwin ;;
  *) fail "unsupported system $(uname -s)" ;;
esac
case "$(uname -m)" in
  x86_64|amd64) ARCH=x64 ;;
  aarch64|arm64) ARCH=arm64 ;;
  *) fail "unsupported architecture $(uname -m)" ;;
esac
PLATFORM="$OS-$ARCH"

if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | cut -d' ' -f1; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | cut -d' ' -f1; }
else
  fail "neither sha256sum nor shasum is available"
fi
if command -v curl >/dev/null 2>&1; then
  get() { curl -fsSL --retry 3 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  get() { wget -q -O "$2" "$1"; }
else
  fail "neither curl nor wget is available"
fi

STAGE=$(mktemp -d "${TMPDIR:-/tmp}/borealis-agent-install.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
BASE="$SERVER/api/agent/packages/$VERSION"

get "$BASE/manifest.txt" "$STAGE/manifest.txt" || fail "cannot download the manifest of $VERSION"
[ "$(sha256 "$STAGE/manifest.txt")" = "$MANIFEST_SHA" ] ||
  fail "the manifest does not match the install command (get a new command from the console)"
get "$BASE/manifest.sig" "$STAGE/manifest.sig" || fail "cannot download the manifest signature"

FOUND=0
# file <platform> <name> <mode> <sha256> <size> <gz sha256> <gz size>
grep "^file $PLATFORM " "$STAGE/manifest.txt" > "$STAGE/files.txt" || true
while read -r _ _ NAME MODE SHA _ GZSHA _; do
  case "$NAME" in *[!A-Za-z0-9._-]*) fail "bad file name in manifest" ;; esac
  get "$BASE/$PLATFORM/$NAME.gz" "$STAGE/$NAME.gz" || fail "cannot download $NAME"
  [ "$(sha256 "$STAGE/$NAME.gz")" = "$GZSHA" ] || fail "$NAME.gz does not match the manifest"
  gzip -dc "$STAGE/$NAME.gz" > "$STAGE/$NAME"
  rm -f "$STAGE/$NAME.gz"
  [ "$(sha256 "$STAGE/$NAME")" = "$SHA" ] || fail "$NAME does not match the manifest"
  chmod "$MODE" "$STAGE/$NAME"
  FOUND=$((FOUND + 1))
done < "$STAGE/files.txt"
[ "$FOUND" -gt 0 ] || fail "version $VERSION has no package for $PLATFORM"

set -- install --server "$SERVER" --token "$TOKEN" --from "$STAGE"
[ -n "$HOSTNAME_ARG" ] && set -- "$@" --hostname "$HOSTNAME_ARG"
# The staged runtime was checked above; the agent verifies the signature itself.
"$STAGE/deno" run --allow-all --no-config --no-lock --quiet "$STAGE/agent.js" "$@"
