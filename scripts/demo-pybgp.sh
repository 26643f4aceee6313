#!/usr/bin/env bash
# The pybgp demo: pybgpd peering with FRR (as a container) over a veth between two network
# namespaces, exchanging routes; shows both sides' tables, then removes everything it made.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh >/dev/null
bash scripts/frr-image.sh

tag="demo$$"
ns_py="${tag}py" ns_frr="${tag}frr" work=$(mktemp -d)
container="${tag}-frr"
cleanup() {
  [ -f "$work/pybgpd.pid" ] && kill "$(cat "$work/pybgpd.pid")" 2>/dev/null || true
  podman --runtime runc rm -f "$container" >/dev/null 2>&1 || true
  ip netns del "$ns_py" 2>/dev/null || true
  ip netns del "$ns_frr" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$ns_py"; ip netns add "$ns_frr"
ip -n "$ns_py" link set lo up; ip -n "$ns_frr" link set lo up
ip -n "$ns_py" link add "${tag}a" type veth peer name "${tag}b" netns "$ns_frr"
ip -n "$ns_py" addr add 10.0.0.1/24 dev "${tag}a"; ip -n "$ns_py" addr add 2001:db8::1/64 dev "${tag}a" nodad
ip -n "$ns_frr" addr add 10.0.0.2/24 dev "${tag}b"; ip -n "$ns_frr" addr add 2001:db8::2/64 dev "${tag}b" nodad
ip -n "$ns_py" link set "${tag}a" up; ip -n "$ns_frr" link set "${tag}b" up

mkdir -p "$work/frr"
cat >"$work/frr/bgpd.conf" <<'CONF'
hostname tor1
router bgp 65001
 bgp router-id 10.255.0.2
 no bgp ebgp-requires-policy
 timers bgp 3 9
 neighbor 10.0.0.1 remote-as 65000
 neighbor 10.0.0.1 timers connect 1
 address-family ipv4 unicast
  network 192.0.2.0/24
  network 198.51.100.0/24
 exit-address-family
CONF
ip -n "$ns_frr" route add blackhole 192.0.2.0/24
ip -n "$ns_frr" route add blackhole 198.51.100.0/24
podman --runtime runc run -d --name "$container" --network "ns:/run/netns/$ns_frr" \
  --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 -v "$work/frr:/cfg" \
  localhost/pybgp-frr:bookworm /usr/lib/frr/bgpd -f /cfg/bgpd.conf -Z -S -u root -g root \
  --vty_socket /cfg -l 10.0.0.2 >/dev/null

cat >"$work/pybgpd.toml" <<'CONF'
[global]
asn = 65000
router_id = "10.255.0.1"
listen = ["10.0.0.1"]

[[neighbors]]
address = "10.0.0.2"
peer_asn = 65001
description = "FRR top-of-rack (container)"

[[routes]]
prefix = "10.1.0.0/24"
communities = ["65000:100"]
large_communities = ["65000:1:2"]

[[routes]]
prefix = "10.2.0.0/24"
med = 50

[[routes]]
prefix = "10.9.0.0/24"           # originated, but kept in: the export policy rejects it

# Export is strict: only what a policy accepts is advertised.
[[policy.prefix_sets]]
name = "internal-only"
prefixes = ["10.9.0.0/16 le 24"]

[[policy.definitions]]
name = "export-own"
[[policy.definitions.statements]]
name = "keep-internal"
conditions = { prefix_set = "internal-only" }
actions = { disposition = "reject" }
[[policy.definitions.statements]]
name = "own-routes"
conditions = { route_type = "local" }
actions = { disposition = "accept", communities = { add = ["65000:999"] } }

[policy.attach]
export = ["export-own"]
CONF
ip netns exec "$ns_py" .venv/bin/pybgpd -c "$work/pybgpd.toml" --socket "$work/pybgpd.sock" \
  >"$work/pybgpd.log" 2>&1 &
echo $! >"$work/pybgpd.pid"

pybgp() { .venv/bin/pybgp --socket "$work/pybgpd.sock" "$@"; }
for _ in $(seq 100); do
  state=$(pybgp -j neighbor 10.0.0.2 2>/dev/null | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null || true)
  [ "$state" = Established ] && break
  sleep 0.2
done
sleep 1
echo "== pybgpd: pybgp neighbor"
pybgp neighbor
echo
echo "== pybgpd: pybgp rib"
pybgp rib
echo
echo "== pybgpd: pybgp policy"
pybgp policy
echo
echo "== pybgpd: why 10.9.0.0/24 is not sent to FRR: pybgp rib 10.9.0.0/24 --explain 10.0.0.2"
pybgp rib 10.9.0.0/24 --explain 10.0.0.2
echo
echo "== FRR (container $container): show bgp ipv4 unicast"
vtysh --vty_socket "$work/frr" -d bgpd -c "show bgp ipv4 unicast" | sed -n '/Network/,$p'
[ "$state" = Established ]
