#!/usr/bin/env bash
# examples.sh runs the polyglot client examples against a real server process:
#   examples/node    (@grpc/grpc-js from npm)       DescribeInstances, RunInstances, WatchJobs
#   examples/python  (Debian's python3-grpcio)      the same three calls
#   examples/curl    (REST with curl and jq)        the REST equivalents, jobs:watch as NDJSON
#
#   bash scripts/examples.sh                  # all three
#   bash scripts/examples.sh node curl        # some of them
#
# It installs what the examples need (missing Debian packages with apt-get, `npm ci` for the Node
# example, Google's protos via scripts/tools.sh), builds cmd/server into a temporary folder, starts it
# on free loopback ports on the built-in emulator, waits until its gRPC health check answers SERVING,
# runs the examples, then checks that each example also *detects* failure (the emulator is told to fail
# RunInstances jobs; every example must then exit non-zero), and always stops the server at the end.
# Exits non-zero if any example fails, or passes when it should not. QCG_EXAMPLES_FAILURE_CHECK=0 skips
# the failure check.
# Runs non-interactively; installing packages needs root (or password-less sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

EXAMPLES=("$@")
if [ ${#EXAMPLES[@]} -eq 0 ]; then EXAMPLES=(node python curl); fi
for e in "${EXAMPLES[@]}"; do
  case $e in node | python | curl) ;; *) echo "examples.sh: unknown example '$e' (node, python, curl)" >&2; exit 2 ;; esac
done

step() { printf '\n==> %s\n' "$*"; }
want() { local e; for e in "${EXAMPLES[@]}"; do [ "$e" = "$1" ] && return 0; done; return 1; }

# Debian packages. python3-grpc-tools is deliberately not used: its bundled protoc (3.6) predates proto3
# `optional`, which our protos use; Debian's protoc 3.21 and gRPC's Python plugin handle it.
PKGS=(curl jq)
if want python; then PKGS+=(python3-grpcio python3-protobuf protobuf-compiler protobuf-compiler-grpc libprotobuf-dev); fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  step "apt-get install ${missing[*]}"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

step "Google's protos (scripts/tools.sh)"
bash scripts/tools.sh

if want node; then
  step "npm ci (examples/node)"
  node_major=$(node -p 'process.versions.node.split(".")[0]')
  [ "$node_major" -ge 18 ] || { echo "examples/node needs Node.js 18 or later, found $(node --version)" >&2; exit 1; }
  (cd examples/node && npm ci --no-audit --no-fund --loglevel=error)
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$server_pid" 2>/dev/null; then
      echo "server did not stop within 15s of SIGTERM; killing it" >&2
      kill -KILL "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ "$rc" -ne 0 ] && [ -s "$work/server.log" ]; then
    echo; echo "--- last lines of the server log ---"; tail -n 40 "$work/server.log"
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "go build ./cmd/server"
go build -o "$work/server" ./cmd/server

# free_port asks the kernel for a free loopback port (there is a small window before the server binds it).
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
GRPC_ADDR=127.0.0.1:$(free_port)
HTTP_ADDR=127.0.0.1:$(free_port)
while [ "$HTTP_ADDR" = "$GRPC_ADDR" ]; do HTTP_ADDR=127.0.0.1:$(free_port); done
EMU_ADDR=127.0.0.1:$(free_port)
while [ "$EMU_ADDR" = "$GRPC_ADDR" ] || [ "$EMU_ADDR" = "$HTTP_ADDR" ]; do EMU_ADDR=127.0.0.1:$(free_port); done

step "start the server (gRPC $GRPC_ADDR, REST $HTTP_ADDR, built-in emulator)"
# Never let the examples reach the real QingCloud API (they start and terminate instances): no
# QINGCLOUD_* variables, and an empty HOME so ~/.qingcloud/config.yaml is not read either.
mkdir -p "$work/home"
env -u QINGCLOUD_ACCESS_KEY -u QINGCLOUD_SECRET_KEY -u QINGCLOUD_ENDPOINT -u QINGCLOUD_ZONE -u QINGCLOUD_CONFIG \
  HOME="$work/home" "$work/server" -grpc-addr "$GRPC_ADDR" -http-addr "$HTTP_ADDR" -emulator-addr "$EMU_ADDR" \
  >"$work/server.log" 2>&1 &
server_pid=$!

# Healthy = the gRPC health service answers SERVING (the server's own healthcheck subcommand) and the
# REST gateway answers GET /healthz.
healthy=
for _ in $(seq 1 300); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server exited during start-up" >&2; exit 1
  fi
  if "$work/server" healthcheck -grpc-addr "$GRPC_ADDR" -timeout 1s >/dev/null 2>&1 &&
    curl -sf --max-time 2 "http://$HTTP_ADDR/healthz" >/dev/null 2>&1; then
    healthy=1; break
  fi
  sleep 0.1
done
[ -n "$healthy" ] || { echo "the server was not healthy within 30s" >&2; exit 1; }
echo "healthy (pid $server_pid)"

export QCG_GRPC_ADDR=$GRPC_ADDR QCG_HTTP_URL=http://$HTTP_ADDR
export QCG_WATCH_TIMEOUT=${QCG_WATCH_TIMEOUT:-60}
example_cmd() {
  case $1 in
  node) cmd=(node examples/node/client.js) ;;
  python) cmd=(/usr/bin/python3 examples/python/client.py) ;;
  curl) cmd=(bash examples/curl/rest.sh) ;;
  esac
}
failed=()
for e in "${EXAMPLES[@]}"; do
  example_cmd "$e"
  step "example $e: ${cmd[*]}"
  start=$SECONDS
  if "${cmd[@]}"; then
    echo "--- $e: passed in $((SECONDS - start))s"
  else
    echo "--- $e: FAILED (exit $?) after $((SECONDS - start))s"
    failed+=("$e")
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server died during example $e" >&2; exit 1
  fi
done

if [ "${QCG_EXAMPLES_FAILURE_CHECK:-1}" != 0 ]; then
  # The emulator's control API (docs/emulator.md): RunInstances jobs now end "failed".
  step "failure check: the emulator fails RunInstances jobs; every example must exit non-zero"
  curl -sf --max-time 5 -X PUT "http://$EMU_ADDR/_emulator/faults" -d '{"fail_actions":["RunInstances"]}' >/dev/null ||
    { echo "could not set the emulator's faults at http://$EMU_ADDR/_emulator/faults" >&2; exit 1; }
  for e in "${EXAMPLES[@]}"; do
    example_cmd "$e"
    set +e
    out=$("${cmd[@]}" 2>&1)
    rc=$?
    set -e
    if [ "$rc" -ne 0 ] && grep -q 'FAILED: job .* ended failed' <<<"$out"; then
      echo "--- $e: exit $rc, reported: $(grep 'FAILED: job' <<<"$out" | head -n 1 | cut -c1-160)"
    else
      echo "$out" | tail -n 15
      echo "--- $e: FAILED: exit $rc; want non-zero and a 'FAILED: job ... ended failed' line"
      failed+=("$e(failure-check)")
    fi
  done
  curl -sf --max-time 5 -X PUT "http://$EMU_ADDR/_emulator/faults" -d '{}' >/dev/null || true
fi

step "summary"
if [ ${#failed[@]} -gt 0 ]; then
  echo "failed: ${failed[*]}"
  exit 1
fi
echo "all examples passed: ${EXAMPLES[*]}"
