#!/usr/bin/env bash
# REST examples for qingcloud-grpc with curl (and jq to read the JSON):
#   1. GET  /v1/iaas/DescribeInstances?status=running   list running instances
#   2. POST /v1/iaas/RunInstances                       start one instance, get its job id
#   3. GET  /v1/iaas/DescribeJobs?jobs=j-...            the job's state, once
#   4. GET  /v1/iaas/jobs:watch?job_ids=j-...           follow the job until it is terminal (NDJSON stream)
#   5. POST /v1/iaas/TerminateInstances                 remove the instance again and follow that job
#                                                       (skipped with QCG_KEEP_INSTANCE=1)
#   6. GET  /v1/iaas/DescribeInstances?instances=i-...  its final status
# Every response's HTTP status is checked; the script exits non-zero on any failure or if a job does not
# end "successful".
#
# Settings (environment variables; see README.md):
#   QCG_HTTP_URL       base URL, default http://127.0.0.1:8080
#   QCG_TOKEN          bearer token, sent as "Authorization: Bearer <token>" (servers with caller auth)
#   QCG_TLS_CA         PEM file of the CA that signed the server certificate (for https:// URLs)
#   QCG_ZONE           zone for every request; the server's default zone when unset
#   QCG_IMAGE_ID, QCG_INSTANCE_TYPE, QCG_VXNET, QCG_LOGIN_PASSWD   what RunInstances starts
#   QCG_WATCH_TIMEOUT  seconds to wait for a job, default 120
#   QCG_KEEP_INSTANCE  "1" keeps the instance
set -euo pipefail

BASE=${QCG_HTTP_URL:-http://127.0.0.1:8080}
BASE=${BASE%/}
ZONE=${QCG_ZONE:-}
WATCH_TIMEOUT=${QCG_WATCH_TIMEOUT:-120}

command -v jq >/dev/null || { echo "jq is needed: apt-get install jq" >&2; exit 1; }

# Options every request shares: bearer token, CA file, no progress meter but errors shown.
CURL_OPTS=(-sS)
if [ -n "${QCG_TOKEN:-}" ]; then CURL_OPTS+=(-H "Authorization: Bearer $QCG_TOKEN"); fi
if [ -n "${QCG_TLS_CA:-}" ]; then CURL_OPTS+=(--cacert "$QCG_TLS_CA"); fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

die() { echo >&2; echo "FAILED: $*" >&2; exit 1; }

# zq prints "&zone=<zone>" for query strings when QCG_ZONE is set.
zq() { if [ -n "$ZONE" ]; then printf '&zone=%s' "$ZONE"; fi; }

# api METHOD PATH [JSON-BODY] prints the response body, or fails with the AIP-193 error
# ({"error": {"code", "message", "status", "details"}}) when the HTTP status is not 2xx.
api() {
  local method=$1 path=$2 body=${3:-} code
  local args=("${CURL_OPTS[@]}" --max-time 30 -o "$tmp/body" -w '%{http_code}' -X "$method")
  if [ -n "$body" ]; then args+=(-H 'Content-Type: application/json' --data-binary "$body"); fi
  code=$(curl "${args[@]}" "$BASE$path") || die "$method $path: curl could not complete the request (is the server at $BASE?)"
  if [ "$code" -lt 200 ] || [ "$code" -ge 300 ]; then
    die "$method $path: HTTP $code: $(jq -r '.error | "\(.status // .code): \(.message)"' "$tmp/body" 2>/dev/null || cat "$tmp/body")"
  fi
  cat "$tmp/body"
}

# watch_job JOB_ID follows one job over the NDJSON stream GET /v1/iaas/jobs:watch. Each line is
# {"result": {"job": {"job": {...}, "terminal": bool, "failed": bool, "failure_message": "..."}}} or
# {"result": {"notice": {...}}}; a stream that fails after it started ends with an {"error": {...}} line.
# The server ends the stream when the job is terminal. Fails unless the job ended "successful".
watch_job() {
  local job=$1 line rc
  : >"$tmp/last"
  # --fail-with-body: an HTTP error status makes curl exit 22 and its JSON error body still reaches the loop.
  # The pipeline runs as an `if` condition so that its failure does not end the script (set -e) before
  # the checks below; PIPESTATUS[0] is curl's exit status.
  if curl "${CURL_OPTS[@]}" -N --fail-with-body --max-time "$WATCH_TIMEOUT" -H 'Accept: application/x-ndjson' \
    "$BASE/v1/iaas/jobs:watch?job_ids=$job$(zq)" |
    while IFS= read -r line; do
      [ -n "$line" ] || continue
      if jq -e 'has("error")' >/dev/null <<<"$line"; then
        echo "  stream error: $(jq -r '.error | "\(.status // .code): \(.message)"' <<<"$line")"
        echo "error" >"$tmp/last"
        continue
      fi
      if jq -e '.result.notice' >/dev/null <<<"$line"; then
        jq -r '.result.notice | "  notice: polling slowed down (\(.reason)); next poll \(.next_poll_time)"' <<<"$line"
        continue
      fi
      jq -r '.result.job | "  \(.job.job_id) \(.job.job_action // "") status=\(.job.status)" +
        (if .terminal then " [terminal\(if .failed then " FAILED" else "" end)]" else "" end) +
        " resources=\(.job.resource_ids // "-") at \(.job.status_time // "-")" +
        (if (.failure_message // "") != "" then " failure: \(.failure_message)" else "" end)' <<<"$line"
      jq -c '.result.job | {terminal: (.terminal // false), failed: (.failed // false), status: .job.status}' \
        <<<"$line" >"$tmp/last"
    done; then rc=${PIPESTATUS[0]}; else rc=${PIPESTATUS[0]}; fi
  if grep -qx error "$tmp/last"; then die "jobs:watch $job: the stream ended with an error (curl exit $rc)"; fi
  if [ "$rc" -ne 0 ]; then die "jobs:watch $job: curl exit $rc (22: HTTP error status, 28: timeout after ${WATCH_TIMEOUT}s)"; fi
  [ -s "$tmp/last" ] || die "jobs:watch $job: the stream ended without any event"
  jq -e '.terminal' >/dev/null "$tmp/last" || die "jobs:watch $job: the stream ended before the job was terminal"
  jq -e '(.failed | not) and .status == "successful"' >/dev/null "$tmp/last" ||
    die "job $job ended $(jq -r .status "$tmp/last")"
  echo "  job $job successful"
}

echo "qingcloud-grpc curl example: server $BASE"

echo
echo "1. GET /v1/iaas/DescribeInstances?status=running&limit=10"
api GET "/v1/iaas/DescribeInstances?status=running&limit=10$(zq)" >"$tmp/described"
jq -r '"  total_count=\(.total_count // 0)", (.instance_set // [] | .[] | "  \(.instance_id) \(.instance_name // "") \(.instance_type // "") \(.status)")' "$tmp/described"

echo
echo "2. POST /v1/iaas/RunInstances"
body=$(jq -cn --arg image "${QCG_IMAGE_ID:-centos7x64d}" --arg type "${QCG_INSTANCE_TYPE:-c1m1}" \
  --arg vxnet "${QCG_VXNET:-vxnet-0}" --arg passwd "${QCG_LOGIN_PASSWD:-Passw0rd1}" --arg zone "$ZONE" \
  '{image_id: $image, instance_type: $type, instance_name: "qingcloud-grpc-example-curl",
    login_mode: "passwd", login_passwd: $passwd, vxnets: [$vxnet]} + (if $zone != "" then {zone: $zone} else {} end)')
echo "  $(jq -c '.login_passwd = "***"' <<<"$body")"
api POST /v1/iaas/RunInstances "$body" >"$tmp/run"
job=$(jq -r '.job_id // empty' "$tmp/run")
instances=$(jq -r '.instances // [] | join(",")' "$tmp/run")
echo "  job_id=$job instances=$instances"
[ -n "$job" ] || die "RunInstances returned no job_id: $(cat "$tmp/run")"

echo
echo "3. GET /v1/iaas/DescribeJobs?jobs=$job"
api GET "/v1/iaas/DescribeJobs?jobs=$job$(zq)" >"$tmp/jobs"
jq -r '.job_set // [] | .[] | "  \(.job_id) \(.job_action) status=\(.status)"' "$tmp/jobs"
jq -e --arg j "$job" '.job_set // [] | any(.job_id == $j)' >/dev/null "$tmp/jobs" || die "DescribeJobs does not list $job"

echo
echo "4. GET /v1/iaas/jobs:watch?job_ids=$job (NDJSON, until the job is terminal)"
watch_job "$job"

if [ -n "$instances" ] && [ "${QCG_KEEP_INSTANCE:-}" != 1 ]; then
  echo
  echo "5. POST /v1/iaas/TerminateInstances (QCG_KEEP_INSTANCE=1 skips this)"
  body=$(jq -cn --arg ids "$instances" --arg zone "$ZONE" \
    '{instances: ($ids | split(","))} + (if $zone != "" then {zone: $zone} else {} end)')
  api POST /v1/iaas/TerminateInstances "$body" >"$tmp/term"
  tjob=$(jq -r '.job_id // empty' "$tmp/term")
  echo "  job_id=$tjob"
  if [ -n "$tjob" ]; then watch_job "$tjob"; fi

  echo
  echo "6. GET /v1/iaas/DescribeInstances?instances=..."
  q=$(tr ',' '\n' <<<"$instances" | sed 's/^/instances=/' | paste -sd '&')
  api GET "/v1/iaas/DescribeInstances?$q&verbose=0$(zq)" >"$tmp/final"
  jq -r '.instance_set // [] | .[] | "  \(.instance_id) status=\(.status)"' "$tmp/final"
fi

echo
echo "OK"
