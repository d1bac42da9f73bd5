#!/usr/bin/env bash
# Builds the base image ehrlab-base:bookworm (Debian 12 minbase + Python 3.11 with venv) with
# debootstrap, for machines where no image registry is reachable. Needs root and a Docker engine.
# The root filesystem is cached as .cache/docker/base-bookworm.tar; the image is imported once.
set -euo pipefail
cd "$(dirname "$0")/.."
image=${BASE_IMAGE:-ehrlab-base:bookworm}
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base: $image present"
  exit 0
fi
tarball=.cache/docker/base-bookworm.tar
if [ ! -s "$tarball" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null; }
  rootfs=$(mktemp -d)
  trap 'rm -rf "$rootfs"' EXIT
  debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  mkdir -p .cache/docker
  tar -C "$rootfs" -cf "$tarball.part" . && mv "$tarball.part" "$tarball"
fi
docker import "$tarball" "$image" >/dev/null
echo "base: $image imported"
