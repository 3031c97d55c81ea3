#!/usr/bin/env bash
# Schemathesis against a live nexus-server (issue 4): installs schemathesis from PyPI into a venv,
# builds and starts the real server on a free loopback port (rate limit off, temporary DATA_DIR),
# runs schemathesis against the server's own /openapi.json (positive and negative data) with the
# checks "no 5xx" and "every response matches the document" (its schema, a declared status code,
# a declared content type, declared headers), then stops the server.
# Bounded: a fixed number of examples per operation and a fixed seed; a few minutes at most.
#
#   bash .ci/schemathesis.sh            # env: SCHEMATHESIS_VENV, SCHEMATHESIS_EXAMPLES, CARGO_TARGET_DIR
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${SCHEMATHESIS_VENV:-${TMPDIR:-/tmp}/nexus-schemathesis-venv}"
EXAMPLES="${SCHEMATHESIS_EXAMPLES:-100}"
TARGET="${CARGO_TARGET_DIR:-target}"

if [ ! -x "$VENV/bin/schemathesis" ]; then
    echo "schemathesis: installing into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis>=4,<5"
fi

cargo build --quiet -p nexus-server --bin nexus-server
BIN="$(cd "$TARGET" && pwd)/debug/nexus-server"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" --host 127.0.0.1 --port 0 --data-dir "$WORK/data" --rate-limit-per-minute 0 \
    --log warn >"$WORK/stdout" 2>"$WORK/stderr" &
SERVER_PID=$!

URL=""
for _ in $(seq 1 100); do
    if [ -s "$WORK/stdout" ]; then
        URL="$(sed -n 's/.*"listening":"\([^"]*\)".*/\1/p' "$WORK/stdout" | head -n 1)"
        [ -n "$URL" ] && break
    fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$URL" ]; then
    echo "schemathesis: nexus-server did not start" >&2
    cat "$WORK/stderr" >&2
    exit 1
fi
echo "schemathesis: server at $URL" >&2

status=0
# Run from the temporary folder: schemathesis keeps its state in ./.schemathesis.
(cd "$WORK" && "$VENV/bin/schemathesis" run "$URL/openapi.json" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance \
    --max-examples "$EXAMPLES" \
    --seed 4 \
    --workers 2 \
    --request-timeout 70 \
    --generation-database none \
    --no-color) || status=$?

# The server must still be alive, and stop cleanly (exit 0) on SIGTERM.
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "schemathesis: nexus-server died during the run" >&2
    cat "$WORK/stderr" >&2
    exit 1
fi
kill -TERM "$SERVER_PID"
server_status=0
wait "$SERVER_PID" || server_status=$?
SERVER_PID=""
if [ "$server_status" -ne 0 ]; then
    echo "schemathesis: nexus-server exited $server_status after SIGTERM" >&2
    cat "$WORK/stderr" >&2
    exit 1
fi
exit "$status"
