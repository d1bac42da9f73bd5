#!/usr/bin/env bash
# Regenerates the Python gRPC code from protos/ into OUT (default: libs/core).
# tests/unit/test_protos_fresh.py runs this into a temporary folder and fails when the committed code differs.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-libs/core}"
python="${PYTHON:-.venv/bin/python}"
mkdir -p "$out/ehrlab/v1"
"$python" -m grpc_tools.protoc -I protos \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  protos/ehrlab/v1/*.proto
cat > "$out/ehrlab/v1/__init__.py" <<'PY'
"""Generated gRPC API (protos/ehrlab/v1). Regenerate with `make protos`; never edit by hand."""
PY
