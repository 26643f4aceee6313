"""Policy evaluation speed: an export policy whose prefix set has 10,000 entries (mixed
lengths /8../24, exact and ge/le ranges) evaluated over 1,000,000 IPv4 routes (wire-form
prefix keys, half of them inside the set's networks, eight distinct attribute sets, two
peers). One `RouteContext` is made per route inside the timed loop, as the speaker would.

The policy: reject what carries BLACKHOLE; accept prefixes in the 10,000-entry set with an
AS path no longer than 8 (setting LOCAL_PREF and adding a community); reject bogons (a
small set); otherwise the export default, reject.

The anchor, in the same run: a naive evaluation of the same policy that scans every
statement, every prefix-set entry (integer compares, no ipaddress objects) and every
community member for each route, on a sample; its verdicts are checked against the
compiled ones and the per-route ratio printed.

Run: python -m bench.bench_policy [--routes N] [--entries N] [--sample N] [--runs R]
"""

from __future__ import annotations

import argparse
import random
import time
from typing import Any

from pybgp.policy import (
    Actions,
    AsPathLength,
    CommunityAction,
    CommunitySet,
    CompiledPolicy,
    Conditions,
    Definitions,
    MatchSet,
    Policy,
    PolicyChain,
    PrefixSet,
    RouteContext,
    Statement,
    evaluate,
)
from pybgp.rib.peer import PeerInfo
from pybgp.wire import aspath
from pybgp.wire.communities import community_from_str
from pybgp.wire.constants import IPV4_UNICAST, AttrType, SegmentType
from pybgp.wire.pathattrs import PathAttributes

LOCAL_AS = 64000
BOGONS = ["0.0.0.0/8 le 32", "127.0.0.0/8 le 32", "169.254.0.0/16 le 32", "224.0.0.0/4 le 32"]
Route = tuple[bytes, PathAttributes, PeerInfo]


def entries(count: int, rng: random.Random) -> list[str]:
    """Prefix-set entries in 11.0.0.0 - 126.255.255.255, lengths 8..24, 40% exact, 30% le,
    20% ge+le, 10% ge."""
    out = []
    for _ in range(count):
        plen = rng.randint(8, 24)
        value = rng.randint(11 << 24, (127 << 24) - 1) & (0xFFFFFFFF << (32 - plen))
        text = f"{value >> 24}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}/{plen}"
        kind = rng.random()
        if kind < 0.4:
            out.append(text)
        elif kind < 0.7:
            out.append(f"{text} le {min(32, plen + rng.randint(1, 8))}")
        elif kind < 0.9:
            ge = min(32, plen + rng.randint(0, 4))
            out.append(f"{text} ge {ge} le {min(32, ge + rng.randint(0, 6))}")
        else:
            out.append(f"{text} ge {min(32, plen + rng.randint(4, 12))}")
    return out


def definitions(prefix_entries: list[str]) -> Definitions:
    accept = Actions(
        disposition="accept",
        local_pref=200,
        communities=CommunityAction(add=(community_from_str("64000:100"),)),
    )
    statements = (
        Statement(
            name="no-blackhole",
            conditions=Conditions(community_set=MatchSet(set_name="blackhole")),
            actions=Actions(disposition="reject"),
        ),
        Statement(
            name="customers",
            conditions=Conditions(
                prefix_set=MatchSet(set_name="customers"),
                as_path_length=AsPathLength(operator="le", value=8),
            ),
            actions=accept,
        ),
        Statement(
            name="bogons",
            conditions=Conditions(prefix_set=MatchSet(set_name="bogons")),
            actions=Actions(disposition="reject"),
        ),
    )
    return Definitions(
        prefix_sets=(
            PrefixSet.parse("customers", prefix_entries),
            PrefixSet.parse("bogons", BOGONS),
        ),
        community_sets=(CommunitySet(name="blackhole", members=("blackhole", "65535:666")),),
        policies=(Policy(name="export", statements=statements),),
    )


def attribute_sets() -> list[PathAttributes]:
    out = []
    for n in range(8):
        path = tuple(65001 + i for i in range(1 + n * 2))  # lengths 1..15
        values: dict[int, Any] = {
            AttrType.ORIGIN: n % 3,
            AttrType.AS_PATH: ((SegmentType.AS_SEQUENCE, path),),
            AttrType.NEXT_HOP: "192.0.2.1",
        }
        if n == 5:
            values[AttrType.COMMUNITIES] = (community_from_str("blackhole"),)
        out.append(PathAttributes.build(values))
    return out


def routes(count: int, prefix_entries: list[str], rng: random.Random) -> list[Route]:
    """Half the routes inside an entry's network (at a length in its range or not), half
    anywhere in 1.0.0.0 - 223.255.255.255; lengths 8..32."""
    peers = [
        PeerInfo(
            address=f"192.0.2.{n}",
            asn=65000 + n,
            router_id=f"192.0.2.{n}",
            ibgp=False,
            local_asn=LOCAL_AS,
        )
        for n in (1, 2)
    ]
    attrs = attribute_sets()
    nets = [(int(e.split("/")[1].split()[0]), _value(e)) for e in prefix_entries]
    out: list[Route] = []
    for _ in range(count):
        if rng.random() < 0.5:
            plen, value = rng.choice(nets)
            length = min(32, plen + rng.randint(0, 10))
            value |= rng.getrandbits(32) & (0xFFFFFFFF >> plen)
        else:
            length, value = rng.randint(8, 32), rng.randint(1 << 24, (224 << 24) - 1)
        value &= 0xFFFFFFFF << (32 - length) & 0xFFFFFFFF
        key = bytes((length,)) + value.to_bytes(4, "big")[: (length + 7) >> 3]
        out.append((key, rng.choice(attrs), rng.choice(peers)))
    return out


def _value(entry: str) -> int:
    a, b, c, d = (int(x) for x in entry.split("/", maxsplit=1)[0].split("."))
    return a << 24 | b << 16 | c << 8 | d


def run_compiled(chain: PolicyChain, batch: list[Route]) -> int:
    accepted = 0
    family, make = IPV4_UNICAST, RouteContext
    for key, attrs, peer in batch:
        if evaluate(chain, make(key, family, attrs, "192.0.2.1", peer, LOCAL_AS)).accepted:
            accepted += 1
    return accepted


class Naive:
    """The same policy evaluated without compiling: every statement, entry and member
    scanned per route (entries pre-parsed to integers, which favours the naive side)."""

    def __init__(self, d: Definitions) -> None:
        self.policy = d.policies[0]
        self.prefix_sets = {
            s.name: [
                (e.network.prefixlen, int(e.network.network_address), e.ge, e.le) for e in s.entries
            ]
            for s in d.prefix_sets
        }
        self.communities = {
            s.name: [community_from_str(m.replace("_", "-").lower()) for m in s.members]
            for s in d.community_sets
        }

    def accepted(self, key: bytes, attrs: PathAttributes) -> bool:
        for statement in self.policy.statements:
            if self._matches(statement.conditions, key, attrs):
                return statement.actions.disposition == "accept"
        return False  # the export default

    def _matches(self, c: Conditions, key: bytes, attrs: PathAttributes) -> bool:
        if c.community_set is not None:
            members = self.communities[c.community_set.set_name]
            if not any(m == v for m in members for v in attrs.communities):
                return False
        if c.prefix_set is not None and not self._in_prefix_set(c.prefix_set.set_name, key):
            return False
        if c.as_path_length is not None:
            length, want = aspath.path_length(attrs.as_path), c.as_path_length.value
            operator = c.as_path_length.operator
            if operator == "eq":
                return length == want
            return length >= want if operator == "ge" else length <= want
        return True

    def _in_prefix_set(self, name: str, key: bytes) -> bool:
        length = key[0]
        value = int.from_bytes(key[1:].ljust(4, b"\0"), "big")
        for plen, net, ge, le in self.prefix_sets[name]:
            if ge <= length <= le and (value ^ net) >> (32 - plen) == 0:
                return True
        return False


def run_naive(naive: Naive, batch: list[Route]) -> int:
    return sum(naive.accepted(key, attrs) for key, attrs, _ in batch)


def best_of(runs: int, func: Any, *args: object) -> tuple[float, int]:
    best, result = float("inf"), 0
    for _ in range(runs):
        start = time.perf_counter()
        result = func(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--routes", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(4271)
    prefix_entries = entries(args.entries, rng)
    d = definitions(prefix_entries)
    start = time.perf_counter()
    compiled = CompiledPolicy(d)
    t_compile = time.perf_counter() - start
    chain = compiled.chain(["export"], "reject")
    batch = routes(args.routes, prefix_entries, rng)
    print(f"{args.entries:,} prefix-set entries (/8../24, exact and ge/le), 3 statements;")
    print(f"{args.routes:,} IPv4 routes, 8 attribute sets, 2 peers; best of {args.runs}")
    print(f"compile                        : {t_compile:.3f} s")
    t_fast, accepted = best_of(args.runs, run_compiled, chain, batch)
    rate = args.routes / t_fast
    print(f"compiled evaluate()            : {t_fast:.3f} s  {rate / 1e6:.2f} M routes/s")
    print(f"  accepted {accepted:,}, rejected {args.routes - accepted:,}")
    sample = batch[: args.sample]
    naive = Naive(d)
    t_naive, naive_accepted = best_of(1, run_naive, naive, sample)
    assert naive_accepted == run_compiled(chain, sample), "naive and compiled disagree"
    naive_rate = len(sample) / t_naive
    print(
        f"anchor: naive scan ({len(sample):,} routes) : {t_naive:.3f} s  "
        f"{naive_rate:,.0f} routes/s (same verdicts)"
    )
    print(f"  compiled per route is {rate / naive_rate:,.0f} x faster than the naive scan")


if __name__ == "__main__":
    main()
