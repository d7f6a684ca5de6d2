#!/usr/bin/env bash
# redis.sh installs redis-server (Debian's package) when it is missing: the tests of the Redis
# coordination (internal/redistest starts real redis-server processes on free loopback ports) need it.
# It starts no service. Idempotent and quick when redis-server is present.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "redis.sh: redis-server is missing and installing it needs root (apt-get install redis-server)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# Debian's package may start a system instance where an init system runs; the tests use their own.
command -v redis-server
