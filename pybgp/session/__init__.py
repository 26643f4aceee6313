"""One peer's BGP session, sans-IO: bytes and time go in, events and bytes come out.

Read in this order: `fsm` (RFC 4271 §8 as one table), `connection` (the session a caller
drives), `actions` (what each §8.2.2 action does), `inbound` (bytes -> FSM events),
`negotiation` (the OPEN checked, capabilities agreed, collisions), `timers`, `config` (one
peer's settings) and `events` (what a session reports). No clock and no sockets here: the trio
shell is `pybgp.net.session`.
"""
