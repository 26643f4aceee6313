"""`python -m kuberouter.ctl` runs kube-router-ctl."""

from __future__ import annotations

from kuberouter.ctl import main

raise SystemExit(main())
