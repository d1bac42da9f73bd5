#!/usr/bin/env bash
# Installs the real servers the tests talk to, from Debian packages: Ceph radosgw (an S3 server
# that checks signatures), Prometheus with promtool and the Pushgateway. Skips what is present.
set -euo pipefail
need=()
command -v radosgw >/dev/null || need+=(ceph-mon ceph-osd radosgw ceph-common)
command -v prometheus >/dev/null || need+=(prometheus)
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
if [ ${#need[@]} -eq 0 ]; then
  echo "system-deps: present"
  exit 0
fi
sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
echo "system-deps: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
echo "system-deps: done"
