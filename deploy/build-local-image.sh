#!/usr/bin/env bash
# Build and smoke-test the image on a machine without Docker Hub or a Docker engine: the base is
# made from Debian's packages (debootstrap, bookworm's python3 3.11, as in the default base
# python:3.11-slim-bookworm), imported into podman, and the Dockerfile is built on it with
# --build-arg BASE=... . Needs root and: apt-get install -y podman debootstrap runc
#
#   deploy/build-local-image.sh [CONTEXT]     # CONTEXT: the repository (default: this one)
#
# Environment: BASE_IMAGE (tag of the made base), IMAGE (tag of the result), DEBIAN_MIRROR,
# REBUILD_BASE=1 to make the base again, BUILD_CA_BUNDLE=/path/to/ca.crt when pip must trust
# another CA (a proxy that re-signs TLS) during the build; it is not kept in the image.
# The smoke test runs the image's commands with the fixture models of tests/fixtures/models
# mounted as /models and no network.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
context=$(cd "${1:-$here/..}" && pwd)
base_image=${BASE_IMAGE:-localhost/debian-python:3.11-bookworm}
image=${IMAGE:-localhost/image-finder:dev}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
fixtures="$context/tests/fixtures/models"

die() { echo "error: $*" >&2; exit 2; }
for tool in podman debootstrap; do
  command -v "$tool" >/dev/null \
    || die "$tool is missing: apt-get install -y podman debootstrap runc"
done
[[ -f "$context/requirements.lock" ]] || die "$context/requirements.lock is missing"
[[ -f "$fixtures/clip-fixture/config.json" ]] || die "fixture models missing in $fixtures"

# Sandboxes without CAP_SYS_RESOURCE or with hybrid cgroups refuse podman's defaults (crun,
# raised ulimits): fall back to runc and the limits this shell already has.
flags=()
probe_runtime() {
  podman "${flags[@]}" run --rm --network none "$base_image" true >/dev/null 2>&1
}
pick_flags() {
  probe_runtime && return
  local nofile
  nofile=$(ulimit -Hn)
  flags=(--runtime runc)
  run_limits=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=4096:4096)
  podman "${flags[@]}" run --rm --network none "${run_limits[@]}" "$base_image" true >/dev/null \
    || die "podman cannot run containers here (with crun or runc)"
  echo "note: running containers with runc and ulimits nofile=$nofile, nproc=4096"
}
run_limits=()

make_base() {
  local rootfs
  rootfs=$(mktemp -d /var/tmp/image-finder-rootfs.XXXXXX)
  echo "making $base_image with debootstrap (bookworm, minbase) ..."
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >/dev/null
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$base_image" >/dev/null
  rm -rf "$rootfs"
}

if [[ "${REBUILD_BASE:-0}" == 1 ]] || ! podman image exists "$base_image"; then
  make_base
fi
pick_flags

build_mounts=()
if [[ -n "${BUILD_CA_BUNDLE:-}" ]]; then
  pip_conf=$(mktemp /var/tmp/image-finder-pip.XXXXXX)
  printf '[global]\ncert = /etc/ssl/certs/build-ca.crt\n' > "$pip_conf"
  build_mounts=(-v "$BUILD_CA_BUNDLE:/etc/ssl/certs/build-ca.crt:ro")
  build_mounts+=(-v "$pip_conf:/etc/pip.conf:ro")
fi

echo "building $image on $base_image ..."
# --format docker keeps HEALTHCHECK (the OCI format has no field for it).
podman "${flags[@]}" build --format docker "${run_limits[@]}" "${build_mounts[@]}" \
  --build-arg "BASE=$base_image" -t "$image" -f "$context/Dockerfile" "$context"
[[ -z "${pip_conf:-}" ]] || rm -f "$pip_conf"

echo "smoke test ..."
volume="image-finder-smoke-$$"
podman volume create "$volume" >/dev/null
trap 'podman volume rm -f "$volume" >/dev/null' EXIT
run() {
  podman "${flags[@]}" run --rm --network none --no-healthcheck "${run_limits[@]}" \
    -v "$fixtures:/models:ro" -v "$volume:/data" \
    -e MODEL_DIRS=/models/clip-fixture,/models/ruclip-fixture "$@"
}
expect() {  # expect CODE PATTERN -- podman run args...
  local code=$1 pattern=$2 out status
  shift 3
  set +e
  out=$(run "$@" 2>&1)
  status=$?
  set -e
  if [[ "$status" != "$code" || ! "$out" =~ $pattern ]]; then
    die "$* -> exit $status, expected $code and /$pattern/:"$'\n'"$out"
  fi
  echo "  ok (exit $status): ${out##*$'\n'}"
}

[[ $(podman image inspect --format '{{.Config.User}}' "$image") == image-finder ]] \
  || die "the image does not run as the image-finder user"
podman image inspect --format '{{.Config.Healthcheck.Test}}' "$image" \
  | grep -q 'image-finder-bot health' \
  || die "the image has no HEALTHCHECK running image-finder-bot health"

expect 2 'error: BOT_TOKEN is not set' -- "$image" check
expect 0 'configuration ok$' -- -e BOT_TOKEN=123456:smoke-test "$image" check
expect 0 'configuration ok$' -- -e BOT_TOKEN=123456:smoke-test "$image" prepare
expect 1 'unhealthy: no heartbeat at /data/health' -- "$image" health
expect 0 ': ok, ' -- "$image" image-finder-models check /models/clip-fixture
expect 0 'photos ready' -- "$image" python -c '
from pathlib import Path
from PIL import Image, ImageDraw
for name, colour in (("blue", (30, 60, 220)), ("red", (220, 30, 30))):
    img = Image.new("RGB", (256, 256), (235, 235, 230))
    ImageDraw.Draw(img).rectangle((50, 50, 200, 200), fill=colour)
    Path("/data/photos").mkdir(exist_ok=True)
    img.save(f"/data/photos/{name}-square.jpg", quality=92)
print("photos ready")'
expect 0 '' -- "$image" image-finder index /data/photos
expect 0 'blue-square.jpg$' -- "$image" sh -c 'image-finder search "a blue square" --json \
  | python -c "import json, sys; print(json.load(sys.stdin)[\"hits\"][0][\"path\"])"'

# The bot itself in the image, polling the fake Telegram server of the tests on 127.0.0.1 (the
# container shares the host's network), and the image's HEALTHCHECK: needs the dev venv.
if [[ -x "$context/.venv/bin/python" ]]; then
  (cd "$context" && IMAGE_FINDER_IMAGE="$image" IMAGE_FINDER_PODMAN="podman ${flags[*]}" \
    IMAGE_FINDER_RUN_FLAGS="${run_limits[*]}" \
    .venv/bin/python -m pytest -q -p no:cacheprovider tests/test_deploy_files.py -k image)
else
  echo "note: no .venv here (make install): the bot-in-the-image test was not run"
fi
echo "ok: $image built and smoke-tested"
