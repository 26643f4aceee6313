#!/usr/bin/env bash
# Set up a fresh Debian 12 machine (as root) for pybgp / kube-router: system packages, then a
# virtualenv in .venv with the project and its test tools. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  python3 python3-venv python3-dev gcc
  iproute2 iputils-ping procps psmisc
  frr gobgpd bird2
  iptables ipset nftables
  containernetworking-plugins
  podman runc debootstrap
)
# A guest kernel for the tests marked `guest` (IPVS, ipip, fou, dummy: tests/guest.py). The
# host keeps its own kernel; linux-image-amd64 only adds /boot/vmlinuz-* and its modules.
GUEST_PACKAGES=(qemu-system-x86 linux-image-amd64 busybox-static kmod ipvsadm)

missing_of() {
  local pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || echo "$pkg"
  done
}
mapfile -t missing < <(missing_of "${PACKAGES[@]}")
mapfile -t missing_guest < <(missing_of "${GUEST_PACKAGES[@]}")
if ((${#missing[@]} + ${#missing_guest[@]})); then
  echo "setup: installing ${missing[*]} ${missing_guest[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if ((${#missing[@]})); then
    apt-get install -y -qq "${missing[@]}" >/dev/null  # as installed when this was checked
  fi
  if ((${#missing_guest[@]})); then  # QEMU's recommends would bring a desktop's libraries
    apt-get install -y -qq --no-install-recommends "${missing_guest[@]}" >/dev/null
  fi
fi
# The FRR, GoBGP and BIRD services are not wanted: tests start their own daemons in
# namespaces (where a service on the host could not disturb them anyway).
for svc in frr gobgpd bird; do
  systemctl disable --now "$svc" >/dev/null 2>&1 || true
done

PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# (pip's notes about this machine's unused local package folders are filtered out)
quiet() { "$@" 2>&1 | grep -v "^WARNING: Location" || true; }
quiet .venv/bin/pip install -q --upgrade pip
quiet .venv/bin/pip install -q -e '.[dev]' -e ./kuberouter  # pybgp, and the kube-router distribution
.venv/bin/python -c "import pybgp, kubernetes, pyroute2, yaml, pytest"  # the install worked
echo "setup: done ($(.venv/bin/python --version))"
