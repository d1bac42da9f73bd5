#!/usr/bin/env bash
# Fills docker/wheelhouse/ with every wheel the service images install, so that image builds need no
# package index (hermetic builds; no registry or index is reachable from a build here).
#   - the ehrlab libraries and services, built from this checkout;
#   - their third-party dependencies for the images' Python (PYTHON_VERSION, default 3.11, manylinux x86_64),
#     resolved from the PACKAGES / NODEPS_PACKAGES lines of services/*/Dockerfile and docker/*.Dockerfile.
# torch resolves through pip's configured find-links first, so a CPU build placed there is used as is.
set -euo pipefail
cd "$(dirname "$0")/.."
wheelhouse=docker/wheelhouse
python=${PYTHON:-.venv/bin/python}
pyver=${PYTHON_VERSION:-3.11}
pip=("$python" -m pip --disable-pip-version-check -q)
mkdir -p "$wheelhouse"
rm -f "$wheelhouse"/ehrlab_*.whl
# built from a copy, so that no build/ or egg-info litter is left in the checkout
sources=$(mktemp -d)
trap 'rm -rf "$sources"' EXIT
tar -c --exclude=build --exclude='*.egg-info' --exclude=__pycache__ libs services | tar -x -C "$sources"
"${pip[@]}" wheel --no-deps --no-build-isolation -w "$wheelhouse" "$sources"/libs/*/ "$sources"/services/*/ >/dev/null
packages=$(sed -n 's/^ARG PACKAGES="\(.*\)"$/\1/p' services/*/Dockerfile docker/*.Dockerfile | tr ' ' '\n' | sort -u)
nodeps=$(sed -n 's/^ARG NODEPS_PACKAGES="\(.\+\)"$/\1/p' services/*/Dockerfile docker/*.Dockerfile | tr ' ' '\n' | sort -u)
target=(--only-binary=:all: --python-version "$pyver" --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64
        --platform manylinux_2_17_x86_64 --platform linux_x86_64 --implementation cp)
download() {  # pip's log is shown only when it fails (it warns at length about the local index)
  "${pip[@]}" download -d "$wheelhouse" --find-links "$wheelhouse" "${target[@]}" "$@" >"$wheelhouse/.download.log" 2>&1 \
    || { grep -v "is ignored: it is neither" "$wheelhouse/.download.log" >&2; exit 1; }
}
# shellcheck disable=SC2086
download $packages
# shellcheck disable=SC2086
[ -z "$nodeps" ] || download --no-deps $nodeps
for package in $packages $nodeps; do  # fail here, not in a build, when something could not be fetched
  name=$(echo "${package%%[\[=<>]*}" | tr '-' '_')
  ls "$wheelhouse"/"$name"-*.whl >/dev/null 2>&1 || { echo "wheelhouse: no wheel for $package" >&2; exit 1; }
done
echo "wheelhouse: $(ls "$wheelhouse"/*.whl | wc -l) wheels, $(du -sh "$wheelhouse" | cut -f1)"
