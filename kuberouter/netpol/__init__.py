"""The network-policy firewall, pure half: snapshot -> compiled rules -> text or verdicts.

cluster.py     the snapshot (namespaces, pods, policies) and where addresses live
reference.py   NetworkPolicy semantics straight from the API docs (for tests)
compiler.py    snapshot + node -> ipsets and chains for that node's pods
               (index.py, policy_chains.py, pod_chains.py, names.py, ruleset.py)
incremental.py the same result kept up to date per pod/namespace/policy change
render*.py     iptables-restore --noflush, ipset restore and nft -f text
evaluate.py    walk compiled chains like the kernel (sets.py: ipset semantics)
simulate.py    matrices from compiled rules; explain.py reads the traces
loader.py      parsed YAML/JSON documents -> snapshot; truthtable.py e2e tables
"""
