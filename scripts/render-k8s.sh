#!/usr/bin/env bash
# Renders the plain manifests under k8s/ from the Helm chart, so that both deploy the same objects:
#   k8s/base/ehrlab.yaml            the chart with its defaults (namespace ehrlab), Secrets left out
#   k8s/overlays/gpu/config.yaml    the controller's settings with a GPU node pool behind a Kueue queue
# Secrets are never rendered: an overlay generates them (dev) or they are created beforehand.
set -euo pipefail
cd "$(dirname "$0")/.."
helm=$(./scripts/install-helm.sh)
python=${PYTHON:-.venv/bin/python}
"$helm" template ehrlab charts/ehrlab --namespace ehrlab \
  | "$python" -c '
import sys, yaml
docs = [d for d in yaml.safe_load_all(sys.stdin) if d and d["kind"] != "Secret"]
print("# Rendered from charts/ehrlab by scripts/render-k8s.sh: do not edit by hand.")
print(yaml.safe_dump_all(docs, sort_keys=False), end="")
' > k8s/base/ehrlab.yaml
"$helm" template ehrlab charts/ehrlab --namespace ehrlab -f k8s/overlays/gpu/values.yaml \
  --show-only templates/configmap.yaml \
  | "$python" -c '
import sys, yaml
print("# Rendered from charts/ehrlab with k8s/overlays/gpu/values.yaml by scripts/render-k8s.sh: do not edit by hand.")
print(yaml.safe_load(sys.stdin)["data"]["config.yaml"], end="")
' > k8s/overlays/gpu/config.yaml
echo "rendered k8s/base/ehrlab.yaml and k8s/overlays/gpu/config.yaml"
