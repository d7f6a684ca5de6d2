#!/usr/bin/env bash
# image-build.sh runs the Dockerfile's build stage as plain commands, for CI machines without a Docker
# engine, and checks that the result fits the final stage (distroless static, user nonroot):
#
#   bash scripts/image-build.sh [OUT_DIR]     # default OUT_DIR: bin/image (git-ignored)
#
#   1. go mod download
#   2. CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o OUT_DIR/server ./cmd/server
#   3. checks: the build settings recorded in the binary; an ELF executable with no dynamic loader
#      (PT_INTERP) and no dynamic section, as distroless static has no libc; `server -h` runs; the
#      `healthcheck` subcommand (the image's HEALTHCHECK) exists;
#   4. a run as in the container: uid/gid 65532 (nonroot) when we are root, empty environment, no HOME,
#      on free loopback ports; `server healthcheck` must answer SERVING, and SIGTERM must stop it.
# Keep the commands in step with the Dockerfile.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-bin/image}
step() { printf '\n==> %s\n' "$*"; }
fail() { echo "image-build: $*" >&2; exit 1; }

step "go mod download"
go mod download

step "CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o $OUT/server ./cmd/server"
mkdir -p "$OUT"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$OUT/server" ./cmd/server
BIN=$OUT/server
ls -l "$BIN"

step "build settings (go version -m)"
info=$(go version -m "$BIN")
echo "$info" | grep -E '^\s+build\s+(CGO_ENABLED|-trimpath|-ldflags|GOOS|GOARCH)='
# (-ldflags is not recorded when -trimpath is on; the ELF check below sees its effect instead.)
for want in 'CGO_ENABLED=0' '-trimpath=true' 'GOOS=linux'; do
  grep -qF -- "$want" <<<"$info" || fail "the binary was not built with $want"
done

step "static executable, stripped (-s: no symbol table, -w: no DWARF)"
if command -v file >/dev/null; then file "$BIN"; fi
# Read the ELF headers directly, so the check needs no extra package: no PT_INTERP (3) and no
# PT_DYNAMIC (2) program header means nothing is loaded at run time.
/usr/bin/python3 - "$BIN" <<'EOF'
import struct, sys
with open(sys.argv[1], "rb") as f:
    data = f.read()
if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
    sys.exit("not a 64-bit little-endian ELF file")
e_type, = struct.unpack_from("<H", data, 16)
e_phoff, = struct.unpack_from("<Q", data, 32)
e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
types = [struct.unpack_from("<I", data, e_phoff + i * e_phentsize)[0] for i in range(e_phnum)]
if e_type != 2:
    sys.exit(f"ELF type {e_type}, want 2 (EXEC; a PIE or shared object needs a loader)")
if 3 in types or 2 in types:
    sys.exit("dynamically linked (has PT_INTERP or PT_DYNAMIC): distroless static cannot run it")
e_shoff, = struct.unpack_from("<Q", data, 40)
e_shentsize, e_shnum, e_shstrndx = struct.unpack_from("<HHH", data, 58)
def section(i):
    return struct.unpack_from("<IIQQQQ", data, e_shoff + i * e_shentsize)  # name, type, flags, addr, offset, size
_, _, _, _, stroff, strsize = section(e_shstrndx)
strtab = data[stroff:stroff + strsize]
names = [strtab[n:strtab.index(b"\0", n)].decode() for n, *_ in map(section, range(e_shnum))]
if ".symtab" in names:
    sys.exit("has a symbol table (.symtab): not built with -ldflags=-s")
if [n for n in names if n.startswith((".debug_", ".zdebug_"))]:
    sys.exit("has DWARF sections: not built with -ldflags=-w")
print("ELF EXEC, no interpreter, no dynamic section: static; no .symtab, no DWARF: stripped")
EOF

step "server -h runs"
set +e
help=$("$BIN" -h 2>&1)
rc=$?
set -e
echo "$help" | head -n 5
[ "$rc" -lt 126 ] || fail "server -h: exit $rc (could not execute, or killed by a signal)"
[ -n "$help" ] || fail "server -h printed nothing"

step "healthcheck subcommand (the image's HEALTHCHECK)"
set +e
hc=$("$BIN" healthcheck -grpc-addr 127.0.0.1:1 -timeout 1s 2>&1)
rc=$?
set -e
echo "$hc"
if [ "$rc" -ne 1 ] || ! grep -q healthcheck <<<"$hc"; then
  fail "server healthcheck against a closed port: want exit 1 and a healthcheck error, got exit $rc"
fi

step "run as in the container"
run=$(mktemp -d)
chmod 755 "$run"
cp "$BIN" "$run/server"
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$run"
}
trap cleanup EXIT
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
grpc_addr=127.0.0.1:$(free_port)
http_addr=127.0.0.1:$(free_port)
as=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  as=(setpriv --reuid=65532 --regid=65532 --clear-groups)
  echo "as uid/gid 65532 (nonroot), empty environment, cwd /"
else
  echo "as $(id -un) (not root: cannot switch to uid 65532), empty environment, cwd /"
fi
(cd / && exec "${as[@]}" env -i "$run/server" -grpc-addr "$grpc_addr" -http-addr "$http_addr" >"$run/log" 2>&1) &
pid=$!
ok=
for _ in $(seq 1 100); do
  kill -0 "$pid" 2>/dev/null || { cat "$run/log"; fail "the server exited during start-up"; }
  if "$run/server" healthcheck -grpc-addr "$grpc_addr" -timeout 1s >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.1
done
[ -n "$ok" ] || { cat "$run/log"; fail "no SERVING answer within 10s"; }
"$run/server" healthcheck -grpc-addr "$grpc_addr"
start=$SECONDS
kill -TERM "$pid"
for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then cat "$run/log"; fail "still running 30s after SIGTERM"; fi
wait "$pid" 2>/dev/null || true
pid=
echo "stopped $((SECONDS - start))s after SIGTERM"

step "done: $BIN ($(du -h "$BIN" | cut -f1))"
