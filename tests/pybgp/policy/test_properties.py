"""The compiled engine agrees with the naive evaluation (tests/pybgp/policy/naive.py) over
generated policies and routes (tests/pybgp/policy/strategies.py)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pybgp.policy import CompiledPolicy, Definitions, RouteContext, evaluate, explain

from .naive import naive
from .strategies import scenario

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(
    scenario(),
    st.lists(st.sampled_from(["p0", "p1", "p2"]), min_size=1, max_size=3),
    st.sampled_from(["accept", "reject"]),
)
def test_compiled_equals_naive(
    case: tuple[Definitions, list[RouteContext]], names: list[str], default: str
) -> None:
    d, batch = case
    compiled = CompiledPolicy(d)
    chain = compiled.chain(names, default)
    for _ in range(2):  # the second pass answers from the caches
        for route in batch:
            result = evaluate(chain, route)
            accepted, values, next_hop, decided_by = naive(d, names, default, route)
            assert (result.accepted, result.decided_by, result.next_hop) == (
                accepted,
                decided_by,
                next_hop,
            )
            assert dict(result.attributes.values) == values
            assert explain(chain, route).result == result
