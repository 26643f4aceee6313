"""The UPDATE message (RFC 4271 §4.3), decoded for the RIB and re-encodable byte for byte."""

from __future__ import annotations

from typing import Any

import attrs

from pybgp.wire import update_json
from pybgp.wire.attributes import encode_attribute
from pybgp.wire.constants import (
    IPV4_UNICAST,
    IPV6_UNICAST,
    ErrorCode,
    Family,
    MessageType,
    UpdateError,
)
from pybgp.wire.context import CodecContext
from pybgp.wire.errors import Action, MalformedUpdate, Problem
from pybgp.wire.header import frame
from pybgp.wire.mp import MpReach, MpUnreach
from pybgp.wire.nlri import Nlri, NlriError, parse_nlri
from pybgp.wire.pathattrs import PathAttributes
from pybgp.wire.rfc7606 import (
    MANDATORY_WITH_V4_NLRI,
    Findings,
    missing_mandatory,
    parse_attributes,
)


def _session_reset(subcode: int, reason: str) -> MalformedUpdate:
    return MalformedUpdate(
        Problem(
            action=Action.SESSION_RESET,
            code=ErrorCode.UPDATE_MESSAGE,
            subcode=subcode,
            reason=reason,
        )
    )


@attrs.frozen(kw_only=True)
class Update:
    """An UPDATE. Prefixes are wire-form `Nlri` keys (see `pybgp.wire.nlri`).

    `withdrawn` and `nlri` are the IPv4 fields of RFC 4271; other families travel in
    `mp_reach`/`mp_unreach`. `addpath` names the families whose keys carry path identifiers.
    `problem` is the RFC 7606 verdict when the UPDATE was malformed but the session stays up:
    after treat-as-withdraw every prefix is in the withdrawn fields and there are no
    attributes; after attribute discard the bad attributes are gone.
    """

    withdrawn: tuple[Nlri, ...] = ()
    attributes: PathAttributes | None = None
    nlri: tuple[Nlri, ...] = ()
    mp_reach: MpReach | None = None
    mp_unreach: MpUnreach | None = None
    addpath: frozenset[Family] = frozenset()
    problem: Problem | None = attrs.field(default=None, eq=False)

    @classmethod
    def decode(cls, body: bytes, ctx: CodecContext) -> Update:
        """Decode an UPDATE body; raise MalformedUpdate when the session must reset
        (or the family be disabled), per RFC 7606."""
        size = len(body)
        wlen = int.from_bytes(body[0:2], "big")
        if 4 + wlen > size:
            raise _session_reset(
                UpdateError.MALFORMED_ATTRIBUTE_LIST, "withdrawn routes length overruns the message"
            )
        alen = int.from_bytes(body[2 + wlen : 4 + wlen], "big")
        attr_end = 4 + wlen + alen
        if attr_end > size:
            raise _session_reset(
                UpdateError.MALFORMED_ATTRIBUTE_LIST,
                "total path attribute length overruns the message",
            )
        v4_addpath = IPV4_UNICAST in ctx.addpath_rx
        try:
            withdrawn = parse_nlri(body[2 : 2 + wlen], 32, v4_addpath) if wlen else ()
            nlri = parse_nlri(body[attr_end:], 32, v4_addpath) if attr_end < size else ()
        except NlriError as exc:  # RFC 7606 §5.3: no treat-as-withdraw without the NLRI
            raise _session_reset(UpdateError.INVALID_NETWORK_FIELD, str(exc)) from None
        attributes, findings = (
            parse_attributes(body[4 + wlen : attr_end], ctx) if alen else (None, None)
        )
        present = attributes.present if attributes is not None else 0
        if findings is None:
            if not nlri or present & MANDATORY_WITH_V4_NLRI == MANDATORY_WITH_V4_NLRI:
                return cls(
                    withdrawn=withdrawn, attributes=attributes, nlri=nlri, addpath=ctx.addpath_rx
                )
            findings = Findings()
        update = cls(
            withdrawn=withdrawn,
            attributes=attributes,
            nlri=nlri,
            mp_reach=findings.mp_reach,
            mp_unreach=findings.mp_unreach,
            addpath=ctx.addpath_rx,
        )
        reachable = bool(nlri) or (findings.mp_reach is not None and bool(findings.mp_reach.nlri))
        problems = findings.problems
        if reachable:
            missing = missing_mandatory(present, bool(nlri))
            if missing is not None:
                problems.append(missing)
        if not problems:
            return update
        return update._judged(problems, reachable, findings.mp_family)

    def _judged(self, problems: list[Problem], reachable: bool, mp_family: Any) -> Update:
        """Apply the strongest verdict (RFC 7606 §3 (h))."""
        worst = max(problems, key=lambda p: p.action.severity)
        if worst.action == Action.TREAT_AS_WITHDRAW and not reachable:
            # RFC 7606 §5.2: with no reachable NLRI, only attribute discard avoids a reset.
            worst = attrs.evolve(worst, action=Action.SESSION_RESET)
        if worst.action == Action.SESSION_RESET:
            raise MalformedUpdate(worst)
        if worst.action == Action.AFI_SAFI_DISABLE:
            raise MalformedUpdate(worst, Family(*mp_family))
        if worst.action == Action.TREAT_AS_WITHDRAW:
            return self._as_withdrawal(worst)
        return attrs.evolve(self, problem=worst)

    def _as_withdrawal(self, problem: Problem) -> Update:
        """Every prefix of the UPDATE withdrawn (RFC 7606 §2, treat-as-withdraw)."""
        by_family: dict[Family, list[Nlri]] = {IPV4_UNICAST: [*self.withdrawn, *self.nlri]}
        for mp in (self.mp_unreach, self.mp_reach):
            if mp is not None:
                by_family.setdefault(mp.family, []).extend(mp.nlri)
        v4 = tuple(by_family.pop(IPV4_UNICAST))
        unreach = None
        if by_family:
            family, keys = by_family.popitem()
            unreach = MpUnreach(family=family, nlri=tuple(keys))
        return Update(withdrawn=v4, mp_unreach=unreach, addpath=self.addpath, problem=problem)

    def end_of_rib(self) -> Family | None:
        """The family this UPDATE marks End-of-RIB for (RFC 4724 §2), if it is one."""
        if self.withdrawn or self.nlri or self.mp_reach is not None:
            return None
        if self.attributes is None and self.mp_unreach is None:
            return IPV4_UNICAST
        if self.mp_unreach is not None and not self.mp_unreach.nlri and self.attributes is None:
            return self.mp_unreach.family
        return None

    def encode(self, ctx: CodecContext) -> bytes:
        """The message on the wire: attributes in the order they were decoded or given."""
        pieces = [raw for raw in _tlv_slices(self.attributes.raw if self.attributes else b"")]
        mps = [mp for mp in (self.mp_reach, self.mp_unreach) if mp is not None]
        for mp in sorted(mps, key=lambda m: m.position):  # positions count all attributes
            pieces.insert(mp.position, _mp_tlv(mp))
        attributes = b"".join(pieces)
        withdrawn = b"".join(self.withdrawn)
        body = (
            len(withdrawn).to_bytes(2, "big")
            + withdrawn
            + len(attributes).to_bytes(2, "big")
            + attributes
            + b"".join(self.nlri)
        )
        return frame(MessageType.UPDATE, body)

    def to_json(self) -> dict[str, Any]:
        mps = [mp for mp in (self.mp_reach, self.mp_unreach) if mp is not None]
        attributes, flags = update_json.attributes_to_json(self.attributes, mps, self.addpath)
        v4_addpath = IPV4_UNICAST in self.addpath
        out: dict[str, Any] = {"type": "UPDATE"}
        out["withdrawn"] = update_json.prefixes_to_json(self.withdrawn, IPV4_UNICAST, v4_addpath)
        out["attributes"] = attributes
        if flags:
            out["attribute_flags"] = flags
        out["nlri"] = update_json.prefixes_to_json(self.nlri, IPV4_UNICAST, v4_addpath)
        eor = self.end_of_rib()
        if eor is not None:
            out["end_of_rib"] = eor.name
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any], ctx: CodecContext) -> Update:
        """Build an UPDATE to send under `ctx` from its JSON form (prefixes carry path ids
        exactly for the families in ctx.addpath_tx); ValueError names the field."""
        attributes, reach, unreach = update_json.attributes_from_json(
            obj.get("attributes", {}), obj.get("attribute_flags", {}), ctx
        )
        v4_addpath = IPV4_UNICAST in ctx.addpath_tx
        return cls(
            withdrawn=update_json.prefixes_from_json(
                obj.get("withdrawn", []), IPV4_UNICAST, "withdrawn", v4_addpath
            ),
            attributes=attributes,
            nlri=update_json.prefixes_from_json(
                obj.get("nlri", []), IPV4_UNICAST, "nlri", v4_addpath
            ),
            mp_reach=reach,
            mp_unreach=unreach,
            addpath=ctx.addpath_tx,
        )


def _mp_tlv(mp: MpReach | MpUnreach) -> bytes:
    code = 14 if isinstance(mp, MpReach) else 15
    return encode_attribute(mp.flags, code, mp.value())


def _tlv_slices(raw: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(raw):
        flags = raw[pos]
        if flags & 0x10:
            end = pos + 4 + int.from_bytes(raw[pos + 2 : pos + 4], "big")
        else:
            end = pos + 3 + raw[pos + 2]
        out.append(raw[pos:end])
        pos = end
    return out


SUPPORTED = (IPV4_UNICAST, IPV6_UNICAST)
