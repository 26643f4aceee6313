"""The Kubernetes node agent (routing, service proxy, firewall). Filled in by later work."""
