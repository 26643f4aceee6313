"""BGP routing for the node, as pure functions the routing controller applies.

settings.py   the router flags as typed values (passwords decoded)
peers.py      our identity (AS, router ID, cluster ID) and the sessions we want
origin.py     the routes we originate: pod CIDRs, service IPs, service range aggregates
policy.py     the export/import policy as named pybgp definitions
plan.py       all of the above from a store snapshot, annotations at their last good values
speaker_sync.py   a running pybgp Speaker brought to a plan, only what changed
kernel.py     how a learned path becomes a kernel route (direct, tunnel, or none)
"""
