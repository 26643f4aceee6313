#!/usr/bin/env bash
# Build the kube-router agent's container image (podman, rootful) from the local Debian base
# (scripts/debian-base.sh): no registry is needed. It holds the agent (`kube-router`), `pybgp`
# and the operator toolbox: ip, iptables, ipset, ipvsadm, nft, conntrack, tcpdump.
#   bash scripts/agent-image.sh [IMAGE]     # default localhost/kube-router:<version>
# The wheels are built here, from this tree, with this machine's package index; the image
# build itself needs only the Debian mirror. Rebuilding after a change reuses the apt layer.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
VERSION=$("$PYTHON" -c 'import tomllib; print(tomllib.load(open("kuberouter/pyproject.toml", "rb"))["project"]["version"])')
IMAGE=${1:-localhost/kube-router:$VERSION}
BASE=localhost/debian-base:bookworm
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

bash scripts/debian-base.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
quietly() {  # run "$@"; show what it said only when it fails
  "$@" >"$work/log" 2>&1 || { cat "$work/log" >&2; echo "agent-image: failed: $*" >&2; exit 1; }
}
echo "agent-image: wheels for pybgp, kube-router and their dependencies"
quietly "$PYTHON" -m pip wheel -q --wheel-dir "$work/wheels" . ./kuberouter
cat >"$work/Containerfile" <<EOC
FROM $BASE
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \\
      python3 python3-venv ca-certificates kmod \\
      iproute2 iptables ipset ipvsadm nftables conntrack tcpdump \\
    && rm -rf /var/lib/apt/lists/*
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/kube-router \\
    && /opt/kube-router/bin/pip install -q --no-index --find-links /tmp/wheels kube-router \\
    && rm -rf /tmp/wheels /root/.cache
ENV PATH=/opt/kube-router/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENTRYPOINT ["kube-router"]
EOC
echo "agent-image: building $IMAGE"
previous=$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
quietly "${PODMAN[@]}" build -q --network host "${LIMITS[@]}" -t "$IMAGE" "$work"
if [ -n "$previous" ] && [ "$previous" != "$("${PODMAN[@]}" image inspect --format '{{.Id}}' "$IMAGE")" ]; then
  "${PODMAN[@]}" rmi "$previous" >/dev/null 2>&1 || true  # the build this one replaces, unless in use
fi
echo "agent-image: $IMAGE built"
