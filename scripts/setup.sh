#!/usr/bin/env bash
# Creates .venv/ and installs every ehrlab library and service (editable) and the test tools.
# Idempotent: does nothing when no pyproject or requirements file changed since the last run.
set -euo pipefail
cd "$(dirname "$0")/.."
# one installer at a time (parallel `make` targets share .venv)
exec 9>"/tmp/ehrlab-setup-$(id -u).lock"
flock 9
python="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check)
stamp=$(cat requirements/*.txt libs/*/pyproject.toml services/*/pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" = "$stamp" ]; then
  echo "setup: .venv is up to date"
  exit 0
fi
echo "setup: installing into .venv (a few minutes on a fresh machine)"
"${pip[@]}" install -q --upgrade "pip>=24" "setuptools>=75" wheel 2>/dev/null
# torch first: the local CPU wheel. Anything that asks for torch later finds it installed;
# otherwise pip would pull the multi-GB CUDA build.
"${pip[@]}" install -q "torch==2.13.0" 2>/dev/null
"${pip[@]}" install -q --no-deps -r requirements/nodeps.txt 2>/dev/null
editables=()
for dir in libs/*/ services/*/; do editables+=(-e "$dir"); done
constraints=()
[ -f requirements/constraints.txt ] && constraints=(-c requirements/constraints.txt)
# compat mode: the ehrlab.* namespace spans several packages and new modules must be importable at once
# (pip's stderr is kept in .venv/setup.log and shown only on failure: setuptools warns at length about compat mode)
if ! "${pip[@]}" install -q --config-settings editable_mode=compat "${constraints[@]}" \
     -r requirements/dev.txt "${editables[@]}" 2>.venv/setup.log; then
  grep -v "is ignored: it is neither" .venv/setup.log >&2
  exit 1
fi
.venv/bin/python -c "import ehrlab.core, ehrlab.v1.controller_pb2" >/dev/null
echo "$stamp" > .venv/.setup-stamp
echo "setup: done"
