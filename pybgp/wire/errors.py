"""Typed protocol errors: what went wrong, and what RFC 7606 says to do about it."""

from __future__ import annotations

import enum

import attrs


class Action(enum.StrEnum):
    """RFC 7606 §2 error-handling approaches, most severe first."""

    SESSION_RESET = "session-reset"
    AFI_SAFI_DISABLE = "afi-safi-disable"
    TREAT_AS_WITHDRAW = "treat-as-withdraw"
    ATTRIBUTE_DISCARD = "attribute-discard"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {
    Action.SESSION_RESET: 3,
    Action.AFI_SAFI_DISABLE: 2,
    Action.TREAT_AS_WITHDRAW: 1,
    Action.ATTRIBUTE_DISCARD: 0,
}


@attrs.frozen(kw_only=True)
class Problem:
    """One malformation found while decoding, with its RFC 7606 verdict.

    `code`/`subcode`/`data` are the NOTIFICATION that is due when the action is a session reset
    (and what would have been sent under RFC 4271 otherwise, for logging).
    """

    action: Action
    code: int
    subcode: int
    data: bytes = b""
    attribute: str | None = None
    reason: str


class BGPError(Exception):
    """A protocol error that ends the session: the NOTIFICATION (code, subcode, data) is due."""

    def __init__(self, code: int, subcode: int, data: bytes = b"", reason: str = "") -> None:
        super().__init__(reason or f"BGP error {code}/{subcode}")
        self.code = code
        self.subcode = subcode
        self.data = data
        self.reason = reason or f"BGP error {code}/{subcode}"


class MalformedUpdate(BGPError):
    """An UPDATE whose problem RFC 7606 answers with a session reset or an AFI/SAFI disable."""

    def __init__(self, problem: Problem, family: object = None) -> None:
        super().__init__(problem.code, problem.subcode, problem.data, problem.reason)
        self.problem = problem
        self.family = family  # set when the problem is confined to one family (AFI/SAFI disable)
