#!/usr/bin/env bash
# Build the FRR container image the interop tests run (podman, rootful), from the Debian base
# made locally (scripts/debian-base.sh): no registry is needed. Does nothing when it exists.
set -euo pipefail
IMAGE=${FRR_IMAGE:-localhost/pybgp-frr:bookworm}
BASE=localhost/debian-base:bookworm
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

if "${PODMAN[@]}" image exists "$IMAGE"; then
  echo "frr-image: $IMAGE present"
  exit 0
fi
bash "$(dirname "$0")/debian-base.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat >"$work/Containerfile" <<EOC
FROM $BASE
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends frr frr-pythontools \
    && rm -rf /var/lib/apt/lists/*
EOC
echo "frr-image: building $IMAGE"
"${PODMAN[@]}" build -q --network host "${LIMITS[@]}" -t "$IMAGE" "$work" >/dev/null
echo "frr-image: $IMAGE built"
