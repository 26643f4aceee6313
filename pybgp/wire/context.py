"""What a session negotiated; decoding and encoding depend on it."""

from __future__ import annotations

import attrs

from pybgp.wire.constants import MAX_EXTENDED_MESSAGE_LEN, MAX_MESSAGE_LEN, Family


@attrs.frozen(kw_only=True)
class CodecContext:
    """Negotiated session properties (RFC 4271 §4.2 capabilities and the peering type).

    `addpath_rx` lists the families whose received NLRI carry path identifiers, `addpath_tx`
    those whose sent NLRI carry them (RFC 7911 §4: each direction is negotiated separately).
    """

    asn4: bool = True  # RFC 6793: both sides announced 4-octet AS support
    addpath_rx: frozenset[Family] = frozenset()
    addpath_tx: frozenset[Family] = frozenset()
    extended_message: bool = False  # RFC 8654
    ibgp: bool = False
    confederation: bool = False  # the peer is a member-AS of our confederation (RFC 5065)
    peer_asn: int | None = None  # when set, eBGP AS_PATHs must start with it (RFC 4271 §6.3)
    # Everything that decides how attributes are judged, as one hashable key.
    validation_key: tuple[object, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        key = ("rx", self.asn4, self.ibgp, self.confederation, self.peer_asn, self.addpath_rx)
        object.__setattr__(self, "validation_key", key)

    @property
    def max_message_len(self) -> int:
        return MAX_EXTENDED_MESSAGE_LEN if self.extended_message else MAX_MESSAGE_LEN

    def reversed(self) -> CodecContext:
        """The same session seen from the peer's side: ADD-PATH directions swap."""
        return attrs.evolve(self, addpath_rx=self.addpath_tx, addpath_tx=self.addpath_rx)
