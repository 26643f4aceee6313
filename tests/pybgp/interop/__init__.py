"""pybgpd against real BGP speakers (FRR bgpd, GoBGP, BIRD 2) in network namespaces."""
