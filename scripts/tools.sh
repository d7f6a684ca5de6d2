#!/usr/bin/env bash
# tools.sh installs the build tools that do not live in go.mod into .tools/ (git-ignored):
#   - buf, from the npm package @bufbuild/buf (a prebuilt binary; keeps buf's ~100 modules out of go.mod);
#   - the third-party protos we import (google/api/*) and google/longrunning/operations.proto (whose REST
#     gateway we generate; its Go types come from cloud.google.com/go/longrunning), from the npm package
#     google-proto-files.
# It is idempotent and quick when everything is present. Versions are pinned here.
set -euo pipefail
cd "$(dirname "$0")/.."

BUF_VERSION=1.75.0
GOOGLE_PROTO_FILES_VERSION=6.0.1
T=.tools

if [ ! -x "$T/node_modules/.bin/buf" ] || [ "$("$T/node_modules/.bin/buf" --version 2>/dev/null)" != "$BUF_VERSION" ]; then
  mkdir -p "$T"
  echo '{"name":"qingcloud-grpc-tools","private":true}' > "$T/package.json"
  (cd "$T" && npm install --no-audit --no-fund --silent "@bufbuild/buf@$BUF_VERSION")
fi

G="$T/protos/googleapis"
if [ ! -f "$G/.version" ] || [ "$(cat "$G/.version")" != "$GOOGLE_PROTO_FILES_VERSION-lro2" ]; then
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "google-proto-files@$GOOGLE_PROTO_FILES_VERSION" >/dev/null && tar xzf ./*.tgz)
  rm -rf "$G" && mkdir -p "$G/google/api" "$G/google/longrunning" "$G/google/rpc"
  for f in api/annotations api/http api/field_behavior api/client api/launch_stage longrunning/operations rpc/status; do
    cp "$tmp/package/google/$f.proto" "$G/google/$f.proto"
  done
  # Our REST mapping of google.longrunning.Operations is proto/longrunning_http.yaml alone: the file's
  # own bindings are dropped, since its GET /v1/{name=operations/**} would also match GET /v1/operations.
  sed -i '/option (google.api.http) = {/,/};/d' "$G/google/longrunning/operations.proto"
  echo "$GOOGLE_PROTO_FILES_VERSION-lro2" > "$G/.version"
  rm -rf "$tmp"
fi
