#!/usr/bin/env bash
# load.sh measures throughput at a fixed concurrency (default 8): DescribeZones called directly (a
# signed GET to the emulator, as an SDK does), through the facade over gRPC (ghz) and over REST (hey),
# all against the same emulator in the same run. docs/bench-upstream.md records the figures.
#
#   bash scripts/load.sh            # 8 calls in flight, 10 s per measurement
#   C=16 D=20s bash scripts/load.sh
#
# It installs ghz and hey into .tools/bin (pinned versions, through the Go module proxy), builds
# cmd/emulator, cmd/server and scripts/load into a temporary folder, starts the emulator (no quota)
# and the server on it (no client-side quota, loopback, no caller authentication), then runs, in
# turn: the direct baseline (scripts/load -mode direct), ghz, hey, and scripts/load over gRPC and
# REST. Every call of ghz and of scripts/load carries a status filter of its own, so the facade cannot
# coalesce identical concurrent reads (each facade call is then one upstream request, like a direct
# call); hey sends one URL, so its calls may be coalesced: the script prints the emulator's request
# count per facade call for each step. It always stops both processes at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

GHZ_VERSION=v0.93.0
HEY_VERSION=v0.1.5
C=${C:-8}
D=${D:-10s}
T=$PWD/.tools/bin

if [ ! -x "$T/ghz" ] || ! "$T/ghz" --version 2>/dev/null | grep -q "${GHZ_VERSION#v}"; then
  GOBIN=$T go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
fi
if [ ! -x "$T/hey" ] || [ "$(cat "$T/.hey-version" 2>/dev/null)" != "$HEY_VERSION" ]; then
  GOBIN=$T go install "github.com/rakyll/hey@$HEY_VERSION"
  echo "$HEY_VERSION" > "$T/.hey-version"
fi

work=$(mktemp -d)
pids=()
cleanup() {
  rc=$?
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  if [ "$rc" -ne 0 ]; then
    for f in emulator.log server.log; do
      [ -s "$work/$f" ] && { echo "--- last lines of $f ---"; tail -n 20 "$work/$f"; }
    done
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "==> go build ./cmd/emulator ./cmd/server ./scripts/load"
go build -o "$work/emulator" ./cmd/emulator
go build -o "$work/server" ./cmd/server
go build -o "$work/load" ./scripts/load

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
EMU=127.0.0.1:$(free_port)
GRPC=127.0.0.1:$(free_port)
HTTP=127.0.0.1:$(free_port)

"$work/emulator" -addr "$EMU" -quota -1 -log-level warn >"$work/emulator.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fsS "http://$EMU/_emulator/stats" >/dev/null 2>&1 && break; sleep 0.1; done

# The emulator's default key pair (the documentation's example keys).
AK=$(go run ./scripts/load -print-access-key)
printf '%s' "$(go run ./scripts/load -print-secret-key)" > "$work/secret"
mkdir -p "$work/home"
env -u QINGCLOUD_ACCESS_KEY -u QINGCLOUD_SECRET_KEY -u QINGCLOUD_ENDPOINT -u QINGCLOUD_ZONE -u QINGCLOUD_CONFIG \
  -u QINGCLOUD_TOKEN_SHA256 HOME="$work/home" \
  "$work/server" -grpc-addr "$GRPC" -http-addr "$HTTP" -log-level warn -endpoint "http://$EMU/iaas/" \
  -access-key "$AK" -secret-key-file "$work/secret" -zone pek3a -quota-requests -1 >"$work/server.log" 2>&1 &
pids+=($!)
healthy=
for _ in $(seq 1 300); do
  if "$work/server" healthcheck -grpc-addr "$GRPC" -timeout 1s >/dev/null 2>&1; then healthy=1; break; fi
  sleep 0.1
done
[ -n "$healthy" ] || { echo "the server was not healthy within 30s" >&2; exit 1; }

upstream() { curl -fsS "http://$EMU/_emulator/stats" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"].get("DescribeZones", 0))'; }
step() { # step <name> <command...>: runs the command, prints its output and the upstream requests it caused
  local name=$1; shift
  local before after
  before=$(upstream)
  echo "==> $name"
  "$@"
  after=$(upstream)
  echo "    upstream DescribeZones requests during this step: $((after - before))"
}

echo "machine: $(nproc) CPUs, $(uptime)"
step "direct (scripts/load -mode direct, c=$C, $D)" "$work/load" -mode direct -target "http://$EMU/iaas/" -c "$C" -d "$D"
step "gRPC (ghz, c=$C, $D, a status filter per call)" "$T/ghz" --insecure -c "$C" -z "$D" \
  --call qingcloud.iaas.v1.ZoneService/DescribeZones -d '{"status":["active","x{{.RequestNumber}}"]}' \
  -O summary "$GRPC"
step "REST (hey, c=$C, $D, one URL: calls may be coalesced)" "$T/hey" -c "$C" -z "$D" "http://$HTTP/v1/iaas/DescribeZones?status=active"
step "gRPC (scripts/load -mode grpc, c=$C, $D)" "$work/load" -mode grpc -target "$GRPC" -c "$C" -d "$D"
step "REST (scripts/load -mode rest, c=$C, $D)" "$work/load" -mode rest -target "http://$HTTP" -c "$C" -d "$D"
step "direct again (scripts/load -mode direct, c=$C, $D)" "$work/load" -mode direct -target "http://$EMU/iaas/" -c "$C" -d "$D"
echo "machine: $(uptime)"
