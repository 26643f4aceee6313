"""The BGP-4 wire codec: bytes <-> messages, sans-IO (no clock, no sockets)."""
