#!/usr/bin/env bash
# Set everything up on a fresh Debian 12 machine (as root) and run every check and test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/frr-image.sh  # FRR as a container for the interop tests
echo "== ruff"
.venv/bin/ruff check pybgp kuberouter tests bench fixtures examples
echo "== mypy (strict, pybgp)"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest -p no:cacheprovider "$@"
