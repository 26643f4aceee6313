"""Policies as data: statements (conditions + actions), policies, definitions, attachments.

Evaluation (`pybgp.policy.engine`), GoBGP's model:
- A statement matches when every condition it has is true (no condition: always true).
  Then its actions change the route, and its disposition decides: "accept" or "reject"
  ends the evaluation; "next" (no final action) goes on to the next statement with the
  route as changed so far. Later conditions see the changed route.
- A policy whose statements did not decide ends with its `default` ("accept", "reject"),
  or, without one, hands the route to the next policy of the chain.
- A chain is the policies attached at one point, then the attachment's default action.
  Import default: accept. Export default: REJECT (strict: nothing is advertised that no
  policy accepted).

Match options, per set condition (GoBGP match-set-options):
- "any": some value of the route matches some member of the set;
- "all": every member of the set matches some value of the route (AS-path and
  community sets only; for a prefix or an address "all" is "any");
- "invert": no value of the route matches any member.
An empty set matches nothing ("invert" then matches everything; "all" matches everything).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from pybgp.policy.sets import (
    AsPathSet,
    CommunitySet,
    ExtCommunitySet,
    LargeCommunitySet,
    NeighborSet,
    PrefixSet,
)

MATCH_OPTIONS = ("any", "all", "invert")
ROUTE_TYPES = ("internal", "external", "local")
DISPOSITIONS = ("accept", "reject", "next")
LENGTH_OPERATORS = ("eq", "ge", "le")
DEFAULT_IMPORT = "accept"
DEFAULT_EXPORT = "reject"


class PolicyError(ValueError):
    """A policy definition that cannot be compiled (unknown set or policy, bad value)."""


@attrs.frozen(kw_only=True)
class MatchSet:
    """A condition on a defined set: its name and how values are matched against it."""

    set_name: str
    option: str = attrs.field(default="any", validator=attrs.validators.in_(MATCH_OPTIONS))


@attrs.frozen(kw_only=True)
class AsPathLength:
    """Compares the AS path length (an AS_SET counts 1, confederation segments 0)."""

    operator: str = attrs.field(validator=attrs.validators.in_(LENGTH_OPERATORS))
    value: int


@attrs.frozen(kw_only=True)
class NextHopMatch:
    """The next hop is (or with `invert`, is not) one of these addresses or in one of these
    prefixes."""

    members: tuple[str, ...]
    invert: bool = False


@attrs.frozen(kw_only=True)
class Conditions:
    prefix_set: MatchSet | None = None
    neighbor_set: MatchSet | None = None
    as_path_set: MatchSet | None = None
    as_path_length: AsPathLength | None = None
    community_set: MatchSet | None = None
    ext_community_set: MatchSet | None = None
    large_community_set: MatchSet | None = None
    next_hop: NextHopMatch | None = None
    origin: int | None = None  # pybgp.wire.constants.Origin
    route_type: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(ROUTE_TYPES))
    )


@attrs.frozen(kw_only=True)
class MedAction:
    """ "set" N, "add" N, "subtract" N; the result is clamped to 0..2**32-1 and a missing
    MED counts as 0."""

    operation: str = attrs.field(validator=attrs.validators.in_(("set", "add", "subtract")))
    value: int

    @classmethod
    def parse(cls, text: str | int) -> MedAction:
        """100 (set), "100" (set), "+10" (add), "-10" (subtract)."""
        if isinstance(text, int) and not isinstance(text, bool):
            return cls(operation="set", value=_u32(text))
        if not isinstance(text, str) or not text.lstrip("+-").isdigit():
            raise ValueError(f"expected N, +N or -N, got {text!r}")
        operation = {"+": "add", "-": "subtract"}.get(text[0], "set")
        return cls(operation=operation, value=_u32(int(text.lstrip("+-"))))


def _u32(value: int) -> int:
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"expected 0..4294967295, got {value}")
    return value


@attrs.frozen(kw_only=True)
class CommunityAction:
    """Applied in this order: `replace` (when set: the new list), `remove` (the route's
    communities that match the named set), `add` (appended when not already present)."""

    add: tuple[int, ...] = ()
    remove: str | None = None  # a community set name
    replace: tuple[int, ...] | None = None


@attrs.frozen(kw_only=True)
class LargeCommunityAction:
    add: tuple[tuple[int, int, int], ...] = ()
    remove: str | None = None  # a large community set name
    replace: tuple[tuple[int, int, int], ...] | None = None


@attrs.frozen(kw_only=True)
class Prepend:
    """`asn`: a number, "self" (our AS) or "last-as" (the first AS of the path, the
    neighbour's, GoBGP's name); nothing is prepended when "last-as" finds no AS."""

    asn: int | str
    repeat: int = 1

    def __attrs_post_init__(self) -> None:
        if isinstance(self.asn, str) and self.asn not in ("self", "last-as"):
            raise ValueError(
                f"prepend: asn must be a number, 'self' or 'last-as', not {self.asn!r}"
            )
        if not 1 <= self.repeat <= 255:
            raise ValueError(f"prepend: repeat must be 1..255, not {self.repeat}")


@attrs.frozen(kw_only=True)
class Actions:
    disposition: str = attrs.field(default="next", validator=attrs.validators.in_(DISPOSITIONS))
    local_pref: int | None = None
    med: MedAction | None = None
    next_hop: str | None = None  # "self" or an address
    communities: CommunityAction | None = None
    large_communities: LargeCommunityAction | None = None
    as_path_prepend: Prepend | None = None


@attrs.frozen(kw_only=True)
class Statement:
    name: str
    conditions: Conditions = Conditions()
    actions: Actions = Actions()


@attrs.frozen(kw_only=True)
class Policy:
    name: str
    statements: tuple[Statement, ...] = ()
    default: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(DISPOSITIONS[:2]))
    )


@attrs.frozen(kw_only=True)
class Definitions:
    """Every defined set and policy, by name (names are unique per kind)."""

    prefix_sets: tuple[PrefixSet, ...] = ()
    neighbor_sets: tuple[NeighborSet, ...] = ()
    as_path_sets: tuple[AsPathSet, ...] = ()
    community_sets: tuple[CommunitySet, ...] = ()
    ext_community_sets: tuple[ExtCommunitySet, ...] = ()
    large_community_sets: tuple[LargeCommunitySet, ...] = ()
    policies: tuple[Policy, ...] = ()

    def policy(self, name: str) -> Policy:
        found = next((p for p in self.policies if p.name == name), None)
        if found is None:
            raise PolicyError(f"no policy named {name!r}")
        return found


@attrs.frozen(kw_only=True)
class Attachment:
    """The policies applied at one attachment point, in order, and the defaults. On a peer,
    a default of None means the global one."""

    import_policies: tuple[str, ...] = ()
    export_policies: tuple[str, ...] = ()
    default_import: str | None = None
    default_export: str | None = None


GLOBAL_DEFAULTS = Attachment(default_import=DEFAULT_IMPORT, default_export=DEFAULT_EXPORT)


@attrs.frozen(kw_only=True)
class PolicyAssignment:
    """Where policies apply: globally (every peer) and per peer (by address).

    A peer's chain is its own policies followed by the global ones; its default action is
    its own when set, else the global one (import: accept, export: reject).
    """

    global_: Attachment = GLOBAL_DEFAULTS
    peers: Mapping[str, Attachment] = attrs.field(factory=dict)

    def import_chain(self, peer_address: str) -> tuple[tuple[str, ...], str]:
        """(policy names, default action) for routes received from the peer."""
        own = self.peers.get(peer_address, Attachment())
        default = own.default_import or self.global_.default_import or DEFAULT_IMPORT
        return own.import_policies + self.global_.import_policies, default

    def export_chain(self, peer_address: str) -> tuple[tuple[str, ...], str]:
        """(policy names, default action) for routes sent to the peer."""
        own = self.peers.get(peer_address, Attachment())
        default = own.default_export or self.global_.default_export or DEFAULT_EXPORT
        return own.export_policies + self.global_.export_policies, default

    def policy_names(self) -> set[str]:
        attachments = [self.global_, *self.peers.values()]
        return {n for a in attachments for n in a.import_policies + a.export_policies}
