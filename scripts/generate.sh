#!/usr/bin/env bash
# generate.sh is the one command that regenerates everything derived:
#   1. proto/ from QingCloud's Swagger specs (when the specs are present: ../shared/...), by cmd/protogen;
#   2. gen/ from proto/, by buf with the protoc plugins pinned in go.mod.
# Set SPECS to use another spec directory.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/tools.sh
BUF=.tools/node_modules/.bin/buf

SPECS=${SPECS:-../shared/qingcloud-api-specs/2013-08-30/swagger}
if [ -d "$SPECS" ]; then
  go run ./cmd/protogen -specs "$SPECS" -out proto
else
  echo "generate: specs not found at $SPECS; keeping proto/ as committed" >&2
fi
"$BUF" format -w proto
find gen -name '*.go' ! -name 'embed.go' -delete 2>/dev/null || true
rm -f gen/openapiv2/*.json
"$BUF" generate --path proto/qingcloud
# The REST gateway of google.longrunning.Operations (its Go types come from cloud.google.com/go/longrunning).
"$BUF" generate --template buf.gen.longrunning.yaml --path .tools/protos/googleapis/google/longrunning/operations.proto
