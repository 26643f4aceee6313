"""The service proxy's pure core: Services and EndpointSlices -> what a node programs.

config.py       ProxyConfig: the agent flags that change what a Service compiles to
state.py        the compiled values: VirtualService, Frontend, Backend, ServicePlan, ProxyState
endpoints.py    which endpoints are usable (ready / serving / terminating, Local policy)
compiler.py     one Service + its EndpointSlices -> its ServicePlan (a pure function)
incremental.py  the state kept up to date one object change at a time
trace.py        `service trace`: what the node does with one new connection
report.py       `kube-router-ctl services`: what is programmed per Service, and why
render_nft.py   the state as nftables objects (the nftables back end's input)
"""

from __future__ import annotations
