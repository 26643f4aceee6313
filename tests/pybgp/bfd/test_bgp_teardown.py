"""BFD going down takes an Established BGP session down at once with a NOTIFICATION Cease /
BFD Down (RFC 9384), and the session starts again; trio's MockClock keeps it exact."""

from __future__ import annotations

import trio
import trio.testing

from pybgp.bfd.neighbors import NeighborBfd
from pybgp.bfd.packet import BfdState, Diag
from pybgp.bfd.session import BfdStateChanged
from pybgp.config import NeighborConfig
from pybgp.net.session import Dial, PeerSession
from pybgp.session.config import SessionConfig
from pybgp.session.events import Event, StateChanged
from pybgp.wire.capabilities import FourOctetAS, Multiprotocol
from pybgp.wire.constants import IPV4_UNICAST, MessageType
from pybgp.wire.keepalive import Keepalive
from pybgp.wire.notification import Notification
from pybgp.wire.open import Open
from tests.pybgp.test_session_clock import CTX, read_messages

HOLD = 30


class FakeService:
    """Stands in for the BfdService: keeps what `NeighborBfd` registers."""

    def __init__(self) -> None:
        self.added: dict[str, object] = {}

    def add(self, peer: str, local: str, config: object, on_change: object) -> None:
        self.added[peer] = (local, config, on_change)


async def test_bfd_down_sends_cease_bfd_down(autojump_clock: trio.testing.MockClock) -> None:
    config = SessionConfig(
        local_asn=65000, router_id="10.255.0.1", peer_asn=65001, hold_time=HOLD, passive=True
    )
    states: list[str] = []

    def on_event(_session: PeerSession, event: Event) -> None:
        if isinstance(event, StateChanged):
            states.append(event.new.value)

    session = PeerSession(config, Dial(address="10.0.0.2"), on_event)
    neighbor = NeighborConfig(
        address="10.0.0.2", peer_asn=65001, local_address="10.0.0.1", bfd=True
    )
    service = FakeService()
    bfd = NeighborBfd(service)  # type: ignore[arg-type]
    ours, theirs = trio.testing.memory_stream_pair()
    peer_open = Open.build(
        asn=65001,
        hold_time=HOLD,
        bgp_id="10.255.0.2",
        capabilities=(Multiprotocol(family=IPV4_UNICAST), FourOctetAS(asn=65001)),
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(session.run)
        session.accept(ours)
        await theirs.send_all(peer_open.encode(CTX) + Keepalive().encode(CTX))
        while "Established" not in states:
            await trio.sleep(0.1)
        bfd.established(neighbor, session)
        local, _config, on_change = service.added["10.0.0.2"]  # type: ignore[misc]
        assert local == "10.0.0.1"
        # The remote's AdminDown is no failure (RFC 5882 §3.2): the session stays.
        on_change(
            "10.0.0.2",
            BfdStateChanged(
                old=BfdState.UP, new=BfdState.DOWN, diag=Diag(3), remote_admin_down=True
            ),
        )
        assert session.state.value == "Established"
        down_at = trio.current_time()
        on_change("10.0.0.2", BfdStateChanged(old=BfdState.UP, new=BfdState.DOWN, diag=Diag(1)))
        buf = bytearray()
        notification = None
        while notification is None:
            for msg_type, body in await read_messages(theirs, buf):
                if msg_type == MessageType.NOTIFICATION:
                    notification = Notification.decode(body, CTX)
        sent_at = trio.current_time()
        nursery.cancel_scope.cancel()
    assert (notification.code, notification.subcode) == (6, 10)  # Cease / BFD Down
    assert sent_at == down_at  # at once, not at the hold time
    assert states[-2:] == ["Idle", "Active"], states  # and it starts again (passive here)
    assert "sent Cease/BFD Down" in session.last_error
