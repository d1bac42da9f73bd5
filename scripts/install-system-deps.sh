#!/usr/bin/env bash
# Installs the real servers the tests talk to, from Debian packages: Ceph radosgw (an S3 server
# that checks signatures), Prometheus with promtool and the Pushgateway. Skips what is present.
set -euo pipefail
need=()
want() {  # want BINARY PACKAGE...: the packages, unless BINARY is already on PATH
  local binary=$1
  shift
  command -v "$binary" >/dev/null || need+=("$@")
}
want ceph-mon ceph-mon
want ceph-osd ceph-osd
want radosgw radosgw
want ceph ceph-common
want prometheus prometheus
want promtool prometheus
want prometheus-pushgateway prometheus-pushgateway
if [ ${#need[@]} -eq 0 ]; then
  echo "system-deps: present"
  exit 0
fi
mapfile -t need < <(printf '%s\n' "${need[@]}" | sort -u)
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "system-deps: done"
