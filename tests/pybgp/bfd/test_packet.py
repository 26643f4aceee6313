"""BFD Control packet codec (RFC 5880 §4.1): golden vectors, the discard rules of §6.8.6,
and hypothesis properties (round trip; any bytes give a packet or BfdPacketError)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pybgp.bfd.packet import BfdPacketError, BfdState, ControlPacket, Diag

# Captured from FRR 8.4 bfdd (its session Down after ours went quiet): version 1, diag 1,
# Down, Detect Mult 3, 1 s intervals while not Up (RFC 5880 §6.8.3), echo 50 ms.
FRR_DOWN = bytes.fromhex("21400318b77ab57700000000000f4240000f42400000c350")

UP_POLL = bytes.fromhex(
    "20"  # version 1, diag 0
    "e0"  # state Up (3 << 6), Poll
    "03"  # Detect Mult
    "18"  # Length 24
    "00000001"  # My Discriminator
    "00000002"  # Your Discriminator
    "000493e0"  # Desired Min TX 300 ms
    "000493e0"  # Required Min RX 300 ms
    "00000000"  # Required Min Echo RX
)


def test_frr_golden_vector() -> None:
    packet = ControlPacket.decode(FRR_DOWN)
    assert packet == ControlPacket(
        diag=Diag.CONTROL_DETECTION_TIME_EXPIRED,
        state=BfdState.DOWN,
        detect_mult=3,
        my_discriminator=0xB77AB577,
        your_discriminator=0,
        desired_min_tx=1_000_000,
        required_min_rx=1_000_000,
        required_min_echo_rx=50_000,
    )
    assert packet.encode() == FRR_DOWN


def test_up_with_poll_golden_vector() -> None:
    packet = ControlPacket(
        state=BfdState.UP,
        poll=True,
        detect_mult=3,
        my_discriminator=1,
        your_discriminator=2,
        desired_min_tx=300_000,
        required_min_rx=300_000,
    )
    assert packet.encode() == UP_POLL
    assert ControlPacket.decode(UP_POLL) == packet


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (0x10, "final"),
        (0x08, "control_plane_independent"),
        (0x02, "demand"),
    ],
)
def test_flag_bits(flags: int, field: str) -> None:
    data = bytearray(UP_POLL)
    data[1] = 0xC0 | flags
    packet = ControlPacket.decode(bytes(data))
    assert getattr(packet, field) is True
    assert not packet.poll
    assert packet.encode() == bytes(data)


def test_auth_section_kept_for_the_session() -> None:
    data = bytearray(UP_POLL)
    data[1] = 0xC4  # Up, A bit
    data[3] = 24 + 4
    auth = bytes([1, 4, 1, 0x61])  # Simple Password, Auth Len 4, key id 1, "a"
    packet = ControlPacket.decode(bytes(data) + auth)
    assert packet.auth_present and packet.auth == auth
    assert packet.encode() == bytes(data) + auth


def variant(offset: int, value: int, base: bytes = UP_POLL) -> bytes:
    data = bytearray(base)
    data[offset] = value
    return bytes(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (UP_POLL[:23], "shorter than the mandatory section"),
        (variant(0, 0x40), "version 2"),  # §6.8.6: version
        (variant(0, 0x00), "version 0"),
        (variant(3, 23), "Length 23"),  # §6.8.6: Length less than the minimum
        (variant(3, 25), "Length 25, more than the 24 octets"),  # more than received
        (variant(2, 0), "Detect Mult is zero"),
        (variant(1, 0xC1), "Multipoint"),
        (UP_POLL[:4] + bytes(4) + UP_POLL[8:], "My Discriminator is zero"),
        (UP_POLL[:8] + bytes(4) + UP_POLL[12:], "Your Discriminator is zero in state Up"),
        (variant(1, 0x80, UP_POLL[:8] + bytes(4) + UP_POLL[12:]), "zero in state Init"),
        (variant(1, 0xC4), "Length 24, less than 26"),  # A bit: room for the auth header
        (variant(3, 26, variant(1, 0xC4)) + bytes([1, 3]), "Auth Len 3"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_discarded(data: bytes, reason: str) -> None:
    with pytest.raises(BfdPacketError, match=reason):
        ControlPacket.decode(data)


@pytest.mark.parametrize("state", [0x00, 0x40])  # AdminDown, Down: Your Discriminator may be 0
def test_your_discriminator_zero_allowed_when_down(state: int) -> None:
    data = variant(1, state, UP_POLL[:8] + bytes(4) + UP_POLL[12:])
    assert ControlPacket.decode(data).your_discriminator == 0


def test_longer_datagram_than_length_is_fine() -> None:
    assert ControlPacket.decode(UP_POLL + b"\x00" * 8).encode() == UP_POLL


def test_invalid_values_refused_when_built() -> None:
    with pytest.raises(ValueError, match="auth"):
        ControlPacket(
            state=BfdState.UP,
            auth_present=True,
            detect_mult=3,
            my_discriminator=1,
            desired_min_tx=1,
            required_min_rx=1,
        )
    with pytest.raises(ValueError, match="detect_mult"):
        ControlPacket(
            state=BfdState.UP,
            detect_mult=256,
            my_discriminator=1,
            desired_min_tx=1,
            required_min_rx=1,
        )


u32 = st.integers(0, 2**32 - 1)


@st.composite
def packets(draw: st.DrawFn) -> ControlPacket:
    state = draw(st.sampled_from(BfdState))
    yours_low = 0 if state in (BfdState.DOWN, BfdState.ADMIN_DOWN) else 1
    auth_body = draw(st.none() | st.binary(min_size=0, max_size=28))
    auth = (
        b""
        if auth_body is None
        else bytes([draw(st.integers(0, 255)), 2 + len(auth_body)]) + auth_body
    )
    poll = draw(st.booleans())
    return ControlPacket(
        diag=draw(st.integers(0, 31)),
        state=state,
        poll=poll,
        final=draw(st.booleans()) and not poll,
        control_plane_independent=draw(st.booleans()),
        auth_present=bool(auth),
        demand=draw(st.booleans()),
        detect_mult=draw(st.integers(1, 255)),
        my_discriminator=draw(st.integers(1, 2**32 - 1)),
        your_discriminator=draw(st.integers(yours_low, 2**32 - 1)),
        desired_min_tx=draw(u32),
        required_min_rx=draw(u32),
        required_min_echo_rx=draw(u32),
        auth=auth,
    )


@given(packets())
def test_round_trip(packet: ControlPacket) -> None:
    data = packet.encode()
    assert len(data) == data[3]
    assert ControlPacket.decode(data) == packet


@given(st.binary(max_size=80))
def test_any_bytes_decode_or_typed_error(data: bytes) -> None:
    try:
        packet = ControlPacket.decode(data)
    except BfdPacketError:
        return
    assert packet.encode() == data[: data[3]]
