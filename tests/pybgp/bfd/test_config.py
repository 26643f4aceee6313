"""pybgpd's neighbour BFD keys: `bfd`, `bfd_min_rx_ms`, `bfd_min_tx_ms`, `bfd_multiplier`,
their defaults (FRR's 300 ms x 3), range errors that name the key, and the BfdConfig the
Speaker builds from them. Also: the BFD core stays sans-IO (architecture rule 1)."""

from __future__ import annotations

from typing import Any

import pytest

from pybgp.bfd.neighbors import bfd_config, is_failure
from pybgp.bfd.packet import BfdState, Diag
from pybgp.bfd.session import BfdConfig, BfdStateChanged
from pybgp.config import ConfigError, parse
from tests.pybgp.test_sans_io import FORBIDDEN, PYBGP, imported_modules


def config(**neighbor: Any) -> dict[str, Any]:
    return {
        "global": {"asn": 65000, "router_id": "10.0.0.1"},
        "neighbors": [{"address": "10.0.0.2", "peer_asn": 65001, **neighbor}],
    }


def test_defaults_off() -> None:
    [n] = parse(config()).neighbors
    assert (n.bfd, n.bfd_min_rx_ms, n.bfd_min_tx_ms, n.bfd_multiplier) == (False, 300, 300, 3)
    assert bfd_config(n) == BfdConfig(desired_min_tx=0.3, required_min_rx=0.3, detect_mult=3)


def test_keys() -> None:
    [n] = parse(config(bfd=True, bfd_min_rx_ms=100, bfd_min_tx_ms=150, bfd_multiplier=5)).neighbors
    assert n.bfd and (n.bfd_min_rx_ms, n.bfd_min_tx_ms, n.bfd_multiplier) == (100, 150, 5)
    assert bfd_config(n) == BfdConfig(desired_min_tx=0.15, required_min_rx=0.1, detect_mult=5)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("bfd", "yes", "neighbors[0].bfd: expected true or false"),
        ("bfd_min_rx_ms", 5, "neighbors[0].bfd_min_rx_ms: expected an integer 10..60000"),
        ("bfd_min_tx_ms", 60_001, "neighbors[0].bfd_min_tx_ms: expected an integer 10..60000"),
        ("bfd_multiplier", 0, "neighbors[0].bfd_multiplier: expected an integer 1..255"),
        ("bfd_multiplier", 256, "neighbors[0].bfd_multiplier: expected an integer 1..255"),
        ("bfd_interval", 300, "neighbors[0].bfd_interval: unknown key"),
    ],
)
def test_errors_name_the_key(key: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse(config(**{"bfd": True, key: value}))


def test_only_up_to_down_is_a_failure() -> None:
    down = BfdStateChanged(old=BfdState.UP, new=BfdState.DOWN, diag=Diag(1))
    assert is_failure(down)
    admin = BfdStateChanged(
        old=BfdState.UP, new=BfdState.DOWN, diag=Diag(3), remote_admin_down=True
    )
    assert not is_failure(admin)  # RFC 5882 §3.2
    assert not is_failure(BfdStateChanged(old=BfdState.INIT, new=BfdState.DOWN, diag=Diag(1)))


def test_bfd_core_is_sans_io() -> None:
    for name in ("packet.py", "session.py"):
        assert imported_modules(PYBGP / "bfd" / name) & FORBIDDEN == set(), name
