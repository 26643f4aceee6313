"""Policy in pybgpd's TOML: the `[policy]` table and the policy keys of `[[neighbors]]`.

Every mistake is a `pybgp.config_values.ConfigError` that starts with the key holding it
("policy.definitions[0].statements[1].conditions.prefix_set: no prefix set named 'pod'").

```toml
[[policy.prefix_sets]]
name = "pods"
prefixes = ["10.0.0.0/8 le 24", "192.168.0.0/16", "2001:db8::/32 ge 48 le 64",
            "172.16.0.0/12 20..24"]          # GoBGP masklength range also accepted
[[policy.neighbor_sets]]
name = "tors"
neighbors = ["192.0.2.1", "198.51.100.0/24"]
[[policy.as_path_sets]]
name = "via-65002"
as_paths = ["_65002_", "^65001_"]           # `_`: separator, start or end (FRR, GoBGP)
[[policy.community_sets]]
name = "drop"
communities = ["65000:666", "blackhole", "^65000:9[0-9]$"]   # exact, name, or regex
[[policy.ext_community_sets]]
name = "rt"
ext_communities = ["rt:65000:1", "^soo:"]
[[policy.large_community_sets]]
name = "lc"
large_communities = ["65000:1:1", "^65000:2:"]

[[policy.definitions]]
name = "export-pods"
default = "reject"       # optional; accept | reject; absent: on to the next policy
[[policy.definitions.statements]]
name = "pods"            # optional; default: the position, "1", "2", ...
[policy.definitions.statements.conditions]    # all must hold; none: always
prefix_set = "pods"                             # or { set = "pods", match = "invert" }
neighbor_set = { set = "tors", match = "any" }  # prefix, neighbor: any | invert
as_path_set = { set = "via-65002", match = "all" }   # the others: any | all | invert
as_path_length = { operator = "le", value = 3 }       # eq | ge | le
community_set = { set = "drop", match = "invert" }
ext_community_set = "rt"
large_community_set = "lc"
next_hop = ["192.0.2.0/24"]          # or { in = ["192.0.2.1"], match = "invert" }
origin = "igp"                       # igp | egp | incomplete
route_type = "local"                 # internal | external | local
[policy.definitions.statements.actions]
disposition = "accept"               # accept | reject | next (the default: no decision)
local_pref = 200
med = "+10"                          # 100 (set), "+N", "-N"; clamped to 0..2**32-1
next_hop = "self"                    # or an address
communities = { remove = "drop", add = ["65000:1", "no-export"] }  # or replace = [...]
large_communities = { add = ["65000:1:1"] }                         # same keys
as_path_prepend = { asn = "self", repeat = 2 }                     # N, "self" or "last-as"

[[policy.definitions]]
name = "prepend-out"                 # no decision: the route goes on to the next policy
[[policy.definitions.statements]]
actions = { as_path_prepend = { asn = "last-as", repeat = 2 } }

[policy.attach]                      # global: every peer, after the peer's own policies
import = []
export = ["export-pods"]
default_import = "accept"            # the defaults shown
default_export = "reject"            # strict: nothing is advertised that no policy accepted

[[neighbors]]                        # the other keys belong to pybgp.config
address = "192.0.2.1"
import_policy = []                   # a name or a list, applied before the global ones
export_policy = "prepend-out"
default_import_policy = "reject"     # optional; else policy.attach's
default_export_policy = "reject"
```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs

from pybgp.config_values import (
    ConfigError,
    ConfigTable,
    address_value,
    choice,
    list_of,
    read_toml,
)
from pybgp.policy.config_statements import Names, parse_statement, policy_names
from pybgp.policy.engine import CompiledPolicy
from pybgp.policy.model import Attachment, Definitions, Policy, PolicyAssignment
from pybgp.policy.sets import (
    AsPathSet,
    CommunitySet,
    ExtCommunitySet,
    LargeCommunitySet,
    NeighborSet,
    PrefixEntry,
    PrefixSet,
    as_path_regex,
    community_member,
    ext_community_member,
    large_community_member,
    normalise_address_or_prefix,
)

# The policy keys of a [[neighbors]] entry: read here, the others by pybgp.config.
NEIGHBOR_POLICY_KEYS = (
    "import_policy",
    "export_policy",
    "default_import_policy",
    "default_export_policy",
)


@attrs.frozen(kw_only=True)
class PolicyConfig:
    definitions: Definitions = attrs.field(factory=Definitions)
    assignment: PolicyAssignment = attrs.field(factory=PolicyAssignment)

    def compile(self) -> CompiledPolicy:
        return CompiledPolicy(self.definitions, self.assignment)


def load(path: str | Path) -> PolicyConfig:
    return parse(read_toml(path))


def parse(document: Mapping[str, Any]) -> PolicyConfig:
    """The policy part of a whole pybgpd configuration document."""
    table = ConfigTable(document, "").table("policy")
    names = Names()
    sets = {key: _sets(table, key, names.sets[key]) for key in _SET_KINDS}
    policies = tuple(_policy(t, names) for t in table.tables("definitions"))
    global_ = _global_attachment(table.table("attach"), names.policy)
    table.done()
    peers = _peer_attachments(ConfigTable(document, "").tables("neighbors"), names.policy)
    definitions = Definitions(policies=policies, **sets)
    return PolicyConfig(
        definitions=definitions, assignment=PolicyAssignment(global_=global_, peers=peers)
    )


def _checked(check: Callable[[str], object]) -> Callable[[Any], str]:
    def convert(value: Any) -> str:
        check(_member_str(value))
        return str(value)

    return convert


# [[policy.KEY]]: (the members' key, a check of one member, the set's constructor)
_SET_KINDS: dict[str, tuple[str, Callable[[Any], Any], Callable[..., Any]]] = {
    "prefix_sets": ("prefixes", PrefixEntry.parse, PrefixSet),
    "neighbor_sets": ("neighbors", _checked(normalise_address_or_prefix), NeighborSet),
    "as_path_sets": ("as_paths", _checked(as_path_regex), AsPathSet),
    "community_sets": ("communities", _checked(community_member), CommunitySet),
    "ext_community_sets": ("ext_communities", _checked(ext_community_member), ExtCommunitySet),
    "large_community_sets": (
        "large_communities",
        _checked(large_community_member),
        LargeCommunitySet,
    ),
}


def _sets(table: ConfigTable, key: str, seen: set[str]) -> tuple[Any, ...]:
    members_key, check, make = _SET_KINDS[key]
    what = key.removesuffix("_sets").replace("_", "-") + " set"
    out = []
    for t in table.tables(key):
        name = _unique_name(t, seen, what)
        members = tuple(t.get(members_key, list_of(check), default=[]))
        t.done()
        if key == "prefix_sets":
            out.append(make(name=name, entries=members))
        else:
            out.append(make(name=name, members=members))
    return tuple(out)


def _member_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


def _unique_name(t: ConfigTable, seen: set[str], what: str) -> str:
    name = t.get("name", _member_str, required=True)
    if name in seen:
        raise ConfigError(f"{t.key('name')}: {what} {name!r} is defined twice")
    seen.add(name)
    return name


def _policy(t: ConfigTable, names: Names) -> Policy:
    name = _unique_name(t, names.policy, "policy")
    default = t.get("default", choice("accept", "reject"))
    statements = []
    seen: set[str] = set()
    for index, st in enumerate(t.tables("statements")):
        statements.append(parse_statement(st, str(index + 1), seen, names))
    t.done()
    return Policy(name=name, statements=tuple(statements), default=default)


def _global_attachment(t: ConfigTable, known: set[str]) -> Attachment:
    attachment = Attachment(
        import_policies=tuple(t.get("import", policy_names(known), default=())),
        export_policies=tuple(t.get("export", policy_names(known), default=())),
        default_import=t.get("default_import", choice("accept", "reject"), default="accept"),
        default_export=t.get("default_export", choice("accept", "reject"), default="reject"),
    )
    t.done()
    return attachment


def _peer_attachments(neighbors: list[ConfigTable], known: set[str]) -> dict[str, Attachment]:
    """Reads only the policy keys of each [[neighbors]] entry; pybgp.config owns the rest."""
    peers: dict[str, Attachment] = {}
    for t in neighbors:
        if not any(key in t.data for key in NEIGHBOR_POLICY_KEYS):
            continue
        address = t.get("address", address_value, required=True)
        peers[address] = Attachment(
            import_policies=tuple(t.get("import_policy", policy_names(known), default=())),
            export_policies=tuple(t.get("export_policy", policy_names(known), default=())),
            default_import=t.get("default_import_policy", choice("accept", "reject")),
            default_export=t.get("default_export_policy", choice("accept", "reject")),
        )
    return peers
