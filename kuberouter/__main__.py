"""`python -m kuberouter`: the kube-router command."""

import sys

from kuberouter.cli import main

if __name__ == "__main__":
    sys.exit(main())
