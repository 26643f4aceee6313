"""Session-wide hooks: tests marked `guest` run inside one QEMU guest kernel (tests/guest.py)."""

from tests.guest import (  # noqa: F401  (pytest finds hooks by name here)
    pytest_collection_modifyitems,
    pytest_configure,
    pytest_terminal_summary,
)

pytest_plugins = ("pytester",)  # tests/test_guest.py runs pytest sessions of its own
