"""pybgp: a pure-Python BGP-4 speaker (wire codec, sessions, RIBs, policy, daemon, CLI)."""

__version__ = "0.1.0"
