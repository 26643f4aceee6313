#!/usr/bin/env bash
# Build the FRR container image the interop tests run (podman, rootful), from a Debian base
# made locally with debootstrap: no registry is needed. Does nothing when the image exists.
set -euo pipefail
IMAGE=${FRR_IMAGE:-localhost/pybgp-frr:bookworm}
BASE=localhost/debian-base:bookworm
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

if "${PODMAN[@]}" image exists "$IMAGE"; then
  echo "frr-image: $IMAGE present"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! "${PODMAN[@]}" image exists "$BASE"; then
  echo "frr-image: debootstrap bookworm (about a minute)"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian >/dev/null
  tar -C "$work/rootfs" -c . | "${PODMAN[@]}" import - "$BASE" >/dev/null
  rm -rf "$work/rootfs"
fi
cat >"$work/Containerfile" <<EOC
FROM $BASE
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends frr frr-pythontools \
    && rm -rf /var/lib/apt/lists/*
EOC
echo "frr-image: building $IMAGE"
"${PODMAN[@]}" build -q --network host "${LIMITS[@]}" -t "$IMAGE" "$work" >/dev/null
echo "frr-image: $IMAGE built"
