#!/usr/bin/env bash
# Starts a private S3 server (Ceph radosgw on 127.0.0.1) for manual use and prints its endpoint,
# keys and an artifact store URI; Ctrl-C stops it. Options: --port N (default 9000), --dir DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-system-deps.sh
exec .venv/bin/python -m tests.support.s3server "$@"
