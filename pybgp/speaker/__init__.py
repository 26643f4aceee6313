"""The parts of `pybgp.api.Speaker`, split along what changes together.

- `peer`: one neighbour as the Speaker keeps it; its session settings and export key.
- `sessions`: what sessions report (Established, UPDATE, down) turned into RIB changes.
- `pipeline`: Adj-RIB-In changes -> Loc-RIB -> update groups -> the peers, the best-path
  subscribers and the FIB.
- `graceful`: graceful restart (RFC 4724) and route refresh (RFC 2918, RFC 7313).
- `policies`: the import and export policies bound to each peer.
- `views`: read-only views for the control socket and the CLI.
"""
