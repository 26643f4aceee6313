"""MRT routing information export format (RFC 6396; ADD-PATH, RFC 8050): reading the files
RouteViews, RIPE RIS, BIRD, FRR and GoBGP write (`pybgp decode --mrt`), and writing table
dumps and update logs from pybgpd (`[[mrt]]`). Sans-IO but for `dumper`."""
