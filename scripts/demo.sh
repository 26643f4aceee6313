#!/usr/bin/env bash
# The main job: a whole kube-router cluster on this machine (a fresh Debian 12, as root).
# Three nodes, each a network namespace running a real kube-router agent with all three
# controllers (routing over BGP, the firewall, the service proxy), an FRR top-of-rack, pods
# that answer with their names, a Service (ClusterIP + LoadBalancer) and a NetworkPolicy.
# It shows, step by step: each node's BGP sessions and the ToR's table; a pod reaching a pod
# on another node and the route it took; the ClusterIP from another node's pod and the
# LoadBalancer IP from the ToR, naming the pod that answered each time; a NetworkPolicy
# turning an open connection into a refused one, and why. Then it removes everything.
#
#   bash scripts/demo.sh [--keep] [--pause] [--name NAME] [--no-setup]
#
# --pause waits for Enter before each step (to present it). --keep leaves the cluster up to explore (and prints how); Ctrl-C removes it in any case.
# --no-setup skips scripts/setup.sh (the packages and .venv are there already).
# Exit status: 0 when every step did what it says, 1 when one did not (the summary names it).
# The pybgpd + FRR demo is scripts/demo-pybgp.sh.
set -uo pipefail
cd "$(dirname "$0")/.."

NAME=demo KEEP=0 SETUP=1 PAUSE=0
while (($#)); do
  case "$1" in
    --keep) KEEP=1 ;;
    --pause) PAUSE=1 ;;
    --no-setup) SETUP=0 ;;
    --name) NAME=${2:?--name needs a value}; shift ;;
    --name=*) NAME=${1#--name=} ;;
    -h | --help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "demo: unknown argument $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "demo: run it as root (it makes network namespaces)" >&2; exit 2; }
if ((SETUP)); then
  echo "demo: setting up (scripts/setup.sh: Debian packages, .venv)"
  bash scripts/setup.sh >/dev/null || exit 1
  if ! command -v kubectl >/dev/null; then  # only when missing: a newer one stays
    echo "demo: installing kubectl (Debian's kubernetes-client)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null || exit 1
  fi
fi
command -v kubectl >/dev/null || { echo "demo: kubectl is needed (it is not on PATH)" >&2; exit 2; }

STATE=/run/kube-router-cluster/$NAME
if [ -e "$STATE" ]; then  # e.g. kept by an earlier --keep: never removed by this run
  echo "demo: a cluster named $NAME exists already; remove it with" >&2
  echo "    .venv/bin/kube-router-ctl cluster down --name $NAME    (or pick another --name)" >&2
  exit 2
fi
CTL=(.venv/bin/kube-router-ctl)
PYTHON=.venv/bin/python
WORK=$(mktemp -d)
KUBECTL=(kubectl "--kubeconfig=$STATE/kubeconfig" "--cache-dir=$WORK/kube")
CLIENT=$NAME-node1-pod1 CLIENT_IP=10.244.0.2     # on node 1, where no web pod runs
NEIGHBOUR=$NAME-node2-pod1 NEIGHBOUR_IP=10.244.1.2
CLUSTER_IP=10.96.0.10 TOR=$NAME-tor TRIES=6
STEPS=8 step_no=0 failed=() finished=0 started=$SECONDS

# -- how each step speaks ------------------------------------------------------------------
step() {
  step_no=$((step_no + 1))
  if ((PAUSE)); then printf '\n(Enter for step %d) ' "$step_no"; read -r _; fi
  printf '\n== [%d/%d] %s\n' "$step_no" "$STEPS" "$*"
}
show() {  # a command as a person types it, and what it said
  local shown=("${@/#kubectl_/kubectl}")
  printf '   $ %s\n' "${shown[*]}"
  "$@" 2>&1 | sed 's/^/   /'
  return "${PIPESTATUS[0]}"
}
ok() { echo "   -> ok: $*"; }
fail() { echo "   -> FAILED: $*"; failed+=("[$step_no] $*"); }
in_fabric() { ip netns exec "$NAME-fabric" "$@"; }  # where the API server listens
kubectl_() { in_fabric "${KUBECTL[@]}" "$@"; }
vtysh_() { vtysh --vty_socket "$STATE/tor" -d bgpd -c "$1"; }
json() { local code=$1; shift; "$PYTHON" -c "import json, sys; data = json.load(sys.stdin); $code" "$@"; }

# reach NETNS IP PORT: one TCP connection from NETNS, in words: "answered by POD (it saw
# SOURCE)", "refused", "timed out" or what failed. The pods answer with their names.
reach() {
  local out rc
  out=$(ip netns exec "$1" timeout 3 bash -c 'cat <"/dev/tcp/$0/$1"' "$2" "$3" 2>&1)
  rc=$?
  if ((rc == 0)) && [ -n "$out" ]; then
    set -- $out
    echo "answered by $1 (it saw $2)"
  elif ((rc == 124)); then
    echo "timed out"
  elif [[ $out == *refused* ]]; then
    echo "refused"
  else
    echo "failed: ${out##*: }"
  fi
}

# answers NETNS IP PORT: whether a connection from NETNS is answered (the agents may still be
# programming what they just learned: each claim is given a bounded while to come true)
answers() { [[ $(reach "$@") == "answered by "* ]]; }

# until SECONDS COMMAND...: run COMMAND until it succeeds, at most SECONDS.
until_() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.5; done
}

# -- clean up: at the end (unless --keep), on Ctrl-C, on any failure ---------------------
finish() {
  trap - EXIT INT TERM
  if ((finished && KEEP)); then
    cat <<EOF

The cluster stays up (--keep). Explore it:
    export KUBECONFIG=$STATE/kubeconfig
    ip netns exec $NAME-fabric kubectl get nodes,pods,services,networkpolicies -o wide
    .venv/bin/pybgp --socket $STATE/bgp-1.sock neighbor
    vtysh --vty_socket $STATE/tor -d bgpd -c 'show bgp ipv4 unicast'
    ip netns exec $CLIENT bash -c 'cat </dev/tcp/$CLUSTER_IP/80'
    ip netns exec $NAME-node1 .venv/bin/kube-router-ctl services
    .venv/bin/kube-router-ctl cluster status --name $NAME
Remove it:
    .venv/bin/kube-router-ctl cluster down --name $NAME
EOF
  else
    echo
    echo "== removing the cluster: kube-router-ctl cluster down --name $NAME"
    "${CTL[@]}" cluster down --name "$NAME" 2>&1 | tail -n 1 | sed 's/^/   /'
  fi
  rm -rf "$WORK"
}
trap finish EXIT
trap 'echo; echo "demo: interrupted"; KEEP=0; exit 130' INT TERM

# -- the cluster's objects ------------------------------------------------------------------
web_pod() {  # web_pod NAME NODE: a pod answering on its container port "http" (8080)
  cat <<EOF
---
apiVersion: v1
kind: Pod
metadata: {name: $1, namespace: default, labels: {app: web}}
spec:
  nodeName: $NAME-$2
  containers: [{name: echo, image: echo, ports: [{name: http, containerPort: 8080}]}]
EOF
}
{
  web_pod web-1 node2
  web_pod web-2 node3
  cat <<EOF
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: web}
  clusterIP: $CLUSTER_IP
  clusterIPs: [$CLUSTER_IP]
  ports: [{name: http, port: 80, targetPort: http, protocol: TCP}]
EOF
} >"$WORK/web.yaml"
cat >"$WORK/policy.yaml" <<'EOF'
# Only pods labelled role=frontend may open connections to the web pods.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-frontends, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {role: frontend}}}]
    ports: [{port: http}]
EOF

# -- 1. the cluster -------------------------------------------------------------------------
step "the cluster: 3 nodes with real agents (routing over BGP, firewall, service proxy), an FRR ToR"
echo "   $ kube-router-ctl cluster up --name $NAME --nodes 3 --pods-per-node 1 --no-static-routes \\"
echo "       --agent-arg=--run-firewall --agent-arg=--advertise-cluster-ip \\"
echo "       --agent-arg=--advertise-loadbalancer-ip -f web.yaml"
"${CTL[@]}" cluster up --name "$NAME" --nodes 3 --pods-per-node 1 --no-static-routes \
  --agent-arg=--run-firewall --agent-arg=--advertise-cluster-ip \
  --agent-arg=--advertise-loadbalancer-ip -f "$WORK/web.yaml" --timeout 120 2>&1 | sed 's/^/   /'
if ((PIPESTATUS[0] != 0)); then
  fail "the cluster did not come up"
  exit 1
fi
lb_ip() { kubectl_ get service web -o 'jsonpath={.status.loadBalancer.ingress[0].ip}' 2>/dev/null; }
until_ 30 test -n "$(lb_ip)"
LB_IP=$(lb_ip)
echo "   (kubectl here runs where the API server listens, with the box's kubeconfig:"
echo "    ip netns exec $NAME-fabric kubectl --kubeconfig=$STATE/kubeconfig ...)"
show kubectl_ get nodes,pods,services -o wide
if [ -n "$LB_IP" ]; then
  ok "3 nodes up; Service web: ClusterIP $CLUSTER_IP, LoadBalancer IP $LB_IP (from the agents' allocator)"
else
  fail "Service web was given no LoadBalancer IP"
fi

# -- 2. BGP ---------------------------------------------------------------------------------
step "BGP: each node's sessions (pybgp against its agent), and the ToR's table (FRR)"
established() {  # established I: node I's agent has its 3 sessions, all Established
  .venv/bin/pybgp --socket "$STATE/bgp-$1.sock" -j neighbor 2>/dev/null |
    json 'sys.exit(not (len(data) == 3 and all(p["state"] == "Established" for p in data)))'
}
for i in 1 2 3; do
  show .venv/bin/pybgp --socket "$STATE/bgp-$i.sock" neighbor
  if established "$i"; then
    ok "node$i: Established with the ToR and both other nodes"
  else
    fail "node$i: not every BGP session is Established"
  fi
done
WANTED="10.244.0.0/24 10.244.1.0/24 10.244.2.0/24 $CLUSTER_IP/32${LB_IP:+ $LB_IP/32}"
tor_has_all() {
  vtysh_ "show bgp ipv4 unicast json" |
    json "sys.exit(not set(sys.argv[1].split()) <= set(data.get('routes', {})))" "$WANTED"
}
until_ 30 tor_has_all
show vtysh --vty_socket "$STATE/tor" -d bgpd -c "show bgp ipv4 unicast"
if tor_has_all; then
  ok "the ToR learned every pod CIDR and the service IPs: $WANTED"
else
  fail "the ToR lacks some of $WANTED"
fi

# -- 3. pod to pod --------------------------------------------------------------------------
step "a pod on node1 reaches a pod on node2, over the route node1's agent learned"
show ip -n "$NAME-node1" route show proto 17
show ip -n "$NAME-node1" route get "$NEIGHBOUR_IP"
echo "   (ping -R: the addresses the packet recorded on its way there and back)"
show ip netns exec "$CLIENT" ping -c 1 -R -W 2 "$NEIGHBOUR_IP"
echo "   $ ip netns exec $CLIENT bash -c 'cat </dev/tcp/$NEIGHBOUR_IP/80'"
until_ 20 answers "$CLIENT" "$NEIGHBOUR_IP" 80
answer=$(reach "$CLIENT" "$NEIGHBOUR_IP" 80)
echo "   $answer"
via=$(ip -n "$NAME-node1" -j route show proto 17 10.244.1.0/24 | json 'print(data[0]["gateway"] if data else "")')
if [[ $answer == "answered by $NEIGHBOUR "* && $via == 10.240.0.12 ]]; then
  ok "$CLIENT -> $NEIGHBOUR, via node2 (10.240.0.12), a route learned over BGP (proto 17)"
else
  fail "$CLIENT -> $NEIGHBOUR: $answer; route to 10.244.1.0/24 via '${via}'"
fi

# -- 4. the ClusterIP -----------------------------------------------------------------------
# both_answer WHAT NETNS IP PORT: TRIES connections, one line each; ok when every one was
# answered and both web pods answered
both_answer() {
  local what=$1 answer try answered=() unanswered=0 by
  until_ 20 answers "$2" "$3" "$4"
  echo "   $ ip netns exec $2 bash -c 'cat </dev/tcp/$3/$4'   ($TRIES times)"
  for ((try = 1; try <= TRIES; try++)); do
    answer=$(reach "$2" "$3" "$4")
    echo "   $try: $answer"
    if [[ $answer == "answered by "* ]]; then
      answered+=("$(cut -d' ' -f3 <<<"$answer")")
    else
      unanswered=$((unanswered + 1))
    fi
  done
  by=$(printf '%s\n' "${answered[@]}" | sort -u | paste -sd' ')
  if ((unanswered == 0)) && [ "$by" = "web-1 web-2" ]; then
    ok "$TRIES of $TRIES answered, by web-1 and web-2"
  else
    fail "$what: $unanswered of $TRIES unanswered; answered by: ${by:-nobody}"
  fi
}
step "the ClusterIP $CLUSTER_IP:80 from $CLIENT (node1; web-1 is on node2, web-2 on node3)"
both_answer ClusterIP "$CLIENT" "$CLUSTER_IP" 80

# -- 5. the LoadBalancer IP from the ToR ----------------------------------------------------
step "the LoadBalancer IP ${LB_IP:-(none)}:80 from the ToR, along the route it learned over BGP"
if [ -n "$LB_IP" ]; then
  hop=$(vtysh_ "show bgp ipv4 unicast $LB_IP/32 json" |
    json 'print(next((p["nexthops"][0]["ip"] for p in data.get("paths", []) if p.get("bestpath")), ""))')
  echo "   FRR's best path for $LB_IP/32: via ${hop:-(none)}"
  if [ -n "$hop" ] && ! ip -n "$TOR" route show "$LB_IP" | grep -q .; then
    # The ToR's bgpd runs without zebra (-Z): put its best path in the kernel as zebra would.
    show ip -n "$TOR" route replace "$LB_IP/32" via "$hop"
  fi
  both_answer "LoadBalancer IP from the ToR" "$TOR" "$LB_IP" 80
else
  fail "no LoadBalancer IP to reach"
fi

# -- 6. a NetworkPolicy ---------------------------------------------------------------------
step "a NetworkPolicy: only pods labelled role=frontend may connect to the web pods"
WEB1_IP=$(kubectl_ get pod web-1 -o 'jsonpath={.status.podIP}')
echo "   before: $CLIENT -> web-1 ($WEB1_IP:8080): $(reach "$CLIENT" "$WEB1_IP" 8080)"
show cat "$WORK/policy.yaml"
if ! show kubectl_ apply -f "$WORK/policy.yaml"; then
  echo "   (this kubectl cannot apply to the box's API server: loading it with cluster load)"
  show "${CTL[@]}" cluster load --name "$NAME" -f "$WORK/policy.yaml"
fi
refused() { [ "$(reach "$CLIENT" "$WEB1_IP" 8080)" = refused ]; }
until_ 20 refused
after=$(reach "$CLIENT" "$WEB1_IP" 8080)
echo "   after:  $CLIENT -> web-1 ($WEB1_IP:8080): $after"
echo "   $ ip netns exec $CLIENT bash -c 'cat </dev/tcp/$CLUSTER_IP/80'"
echo "   $(reach "$CLIENT" "$CLUSTER_IP" 80)"
if [ "$after" = refused ]; then
  ok "the connection that worked is now refused"
else
  fail "after the policy, $CLIENT -> web-1: $after (expected refused)"
fi

# -- 7. why ---------------------------------------------------------------------------------
step "why: kube-router-ctl policy explain, over what the API server holds"
echo "   $ kubectl get namespaces,pods,networkpolicies -o yaml \\"
echo "       | kube-router-ctl policy explain -f - --from default/$CLIENT --to default/web-1 --port 8080/TCP"
kubectl_ get namespaces,pods,networkpolicies -o yaml >"$WORK/objects.yaml"
"${CTL[@]}" policy explain -f "$WORK/objects.yaml" --from "default/$CLIENT" --to default/web-1 \
  --port 8080/TCP >"$WORK/explain.txt" 2>&1
sed 's/^/   /' "$WORK/explain.txt"
if head -n 1 "$WORK/explain.txt" | grep -q ": BLOCKED$" && grep -q "web-from-frontends" "$WORK/explain.txt"; then
  ok "explain says it is blocked, naming web-from-frontends"
else
  fail "explain did not say blocked by web-from-frontends"
fi

# -- 8. the end -----------------------------------------------------------------------------
step "summary"
finished=1
if ((${#failed[@]})); then
  echo "   ${#failed[@]} step(s) did not do what they say ($((SECONDS - started))s):"
  printf '     %s\n' "${failed[@]}"
  exit 1
fi
echo "   every step did what it says ($((SECONDS - started))s)"
