"""Routing policy (sans-IO): defined sets, statements, policies, attachments; compiled once
and evaluated per route.

    definitions = Definitions(prefix_sets=(PrefixSet.parse("pods", ["10.0.0.0/8 le 24"]),),
                              policies=(Policy(name="out", statements=(...)),))
    compiled = CompiledPolicy(definitions, PolicyAssignment(...))
    result = evaluate(compiled.export_chain("192.0.2.1"), RouteContext(...))
    explain(compiled.export_chain("192.0.2.1"), ctx).lines()

The rules are in `pybgp.policy.model`, the sets in `pybgp.policy.sets`, pybgpd's TOML in
`pybgp.policy.config`.
"""

from pybgp.policy.context import Result, RouteContext
from pybgp.policy.engine import CompiledPolicy, PolicyChain, evaluate
from pybgp.policy.explain import Explanation, Step, explain
from pybgp.policy.model import (
    DEFAULT_EXPORT,
    DEFAULT_IMPORT,
    Actions,
    AsPathLength,
    Attachment,
    CommunityAction,
    Conditions,
    Definitions,
    LargeCommunityAction,
    MatchSet,
    MedAction,
    NextHopMatch,
    Policy,
    PolicyAssignment,
    PolicyError,
    Prepend,
    Statement,
)
from pybgp.policy.sets import (
    AsPathSet,
    CommunitySet,
    ExtCommunitySet,
    LargeCommunitySet,
    NeighborSet,
    PrefixEntry,
    PrefixSet,
)

__all__ = [
    "DEFAULT_EXPORT",
    "DEFAULT_IMPORT",
    "Actions",
    "AsPathLength",
    "AsPathSet",
    "Attachment",
    "CommunityAction",
    "CommunitySet",
    "CompiledPolicy",
    "Conditions",
    "Definitions",
    "Explanation",
    "ExtCommunitySet",
    "LargeCommunityAction",
    "LargeCommunitySet",
    "MatchSet",
    "MedAction",
    "NeighborSet",
    "NextHopMatch",
    "Policy",
    "PolicyAssignment",
    "PolicyChain",
    "PolicyError",
    "PrefixEntry",
    "PrefixSet",
    "Prepend",
    "Result",
    "RouteContext",
    "Statement",
    "Step",
    "evaluate",
    "explain",
]
