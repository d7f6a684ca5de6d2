#!/usr/bin/env bash
# attack.sh plays a hostile caller against a real server process and prints what it cost the server:
# peak resident memory during each attack and the connections the server still held.
#
#   bash scripts/attack.sh                      # every attack (about 4 minutes)
#   bash scripts/attack.sh -only rest-flood,hpack
#   QCG_ATTACK_SERVER_ARGS='-idle-timeout 30s' bash scripts/attack.sh -only idle -idle-wait 45s
#
# It builds cmd/server and scripts/attack into a temporary folder, generates a bearer token, starts
# the server on free loopback ports with that token required (on its built-in emulator, never the real
# QingCloud API), waits until it is healthy, runs scripts/attack against it (see its doc comment for
# the attacks; extra arguments go to it), and always stops the server at the end. docs/security.md
# records the figures of a run.
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d)
server_pid=
cleanup() {
  rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$server_pid" 2>/dev/null && kill -KILL "$server_pid" 2>/dev/null || true
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

echo "==> go build ./cmd/server ./scripts/attack"
go build -o "$work/server" ./cmd/server
go build -o "$work/attack" ./scripts/attack

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
GRPC_ADDR=127.0.0.1:$(free_port)
HTTP_ADDR=127.0.0.1:$(free_port)
while [ "$HTTP_ADDR" = "$GRPC_ADDR" ]; do HTTP_ADDR=127.0.0.1:$(free_port); done

gen=$("$work/server" hash-token -generate)
token=$(awk '$1 == "token:" {print $2}' <<<"$gen")
hash=$(awk '$1 == "sha256:" {print $2}' <<<"$gen")

echo "==> start the server (gRPC $GRPC_ADDR, REST $HTTP_ADDR, bearer token required, built-in emulator)"
mkdir -p "$work/home"
# shellcheck disable=SC2086 # QCG_ATTACK_SERVER_ARGS is a list of flags
env -u QINGCLOUD_ACCESS_KEY -u QINGCLOUD_SECRET_KEY -u QINGCLOUD_ENDPOINT -u QINGCLOUD_ZONE -u QINGCLOUD_CONFIG \
  HOME="$work/home" QINGCLOUD_TOKEN_SHA256="$hash" \
  "$work/server" -grpc-addr "$GRPC_ADDR" -http-addr "$HTTP_ADDR" -log-level warn ${QCG_ATTACK_SERVER_ARGS:-} \
  >"$work/server.log" 2>&1 &
server_pid=$!

healthy=
for _ in $(seq 1 300); do
  kill -0 "$server_pid" 2>/dev/null || { echo "the server exited during start-up" >&2; exit 1; }
  if "$work/server" healthcheck -grpc-addr "$GRPC_ADDR" -timeout 1s >/dev/null 2>&1; then healthy=1; break; fi
  sleep 0.1
done
[ -n "$healthy" ] || { echo "the server was not healthy within 30s" >&2; exit 1; }
echo "healthy (pid $server_pid; GOMEMLIMIT ${GOMEMLIMIT:-unset})"

"$work/attack" -rest "$HTTP_ADDR" -grpc "$GRPC_ADDR" -pid "$server_pid" -token "$token" "$@"

kill -0 "$server_pid" 2>/dev/null || { echo "the server died during the attack" >&2; exit 1; }
echo
echo "server still running; peak RSS over its whole life: $(awk '/VmHWM/ {printf "%.1f MiB", $2/1024}' "/proc/$server_pid/status")"
