# syntax=docker/dockerfile:1
# ehrlab ML base: BASE_IMAGE plus torch and transformers (and what they need) in the system site
# packages. The trainer, ehr-generator and grader images are built on it (--build-arg
# BASE_IMAGE=<this image>): their venvs see these packages (--system-site-packages) and install only
# what is missing, so the three share one torch layer on disk and in a node's image cache instead of
# carrying a copy each. A base that already has torch (a CUDA PyTorch image) serves the same way.
# Build from the repository root after scripts/docker-wheelhouse.sh has filled docker/wheelhouse/:
#   docker build -f docker/ml-base.Dockerfile -t ehrlab/ml-base:dev .
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG PACKAGES="torch transformers"
COPY docker/wheelhouse/ /wheelhouse/
RUN python3 -m venv /tmp/installer \
 && /tmp/installer/bin/pip install --no-index --find-links /wheelhouse --no-cache-dir --target /opt/ehrlab-ml ${PACKAGES} \
 && rm -rf /opt/ehrlab-ml/bin

FROM ${BASE_IMAGE}
COPY --from=build /opt/ehrlab-ml /opt/ehrlab-ml
# a .pth file in the interpreter's own site directory puts /opt/ehrlab-ml on sys.path for it and for
# every venv made with --system-site-packages, whatever that directory is called on the base
RUN python3 -c "import pathlib, site; d = pathlib.Path(site.getsitepackages()[0]); d.mkdir(parents=True, exist_ok=True); (d / 'ehrlab-ml.pth').write_text('/opt/ehrlab-ml\n')"
