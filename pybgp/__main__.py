import sys

from pybgp.cli import main

sys.exit(main())
