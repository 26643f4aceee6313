"""The box's kube-controller-manager, for what the agents need of it: EndpointSlices kept in
step with Services and their Pods (endpointslices.py says how).

    python -m kuberouter.cluster.controller_manager --kubeconfig K --netns FABRIC [--period 0.2]

Every period it lists Services, Pods and EndpointSlices and writes the difference: a slice
created, replaced when its endpoints or ports changed, deleted when nothing wants it.
Only slices labelled as this controller's are touched. Listing a small box five times a
second costs little and cannot miss an event; an API error is logged and retried.
"""

from __future__ import annotations

import argparse
import logging
import signal
import time
from collections.abc import Sequence
from pathlib import Path

from kuberouter.cluster.api import Api, ApiError, Object
from kuberouter.cluster.endpointslices import MANAGED_BY, MANAGED_BY_LABEL, desired_slices

log = logging.getLogger("kuberouter.cluster.controller_manager")
_COMPARED = ("addressType", "ports", "endpoints")


def sync(api: Api) -> list[str]:
    """One pass; what it did, one line per write."""
    wanted = desired_slices(api.items("Service"), api.items("Pod"))
    ours = {
        f"{item['metadata'].get('namespace', 'default')}/{item['metadata']['name']}": item
        for item in api.items("EndpointSlice")
        if (item["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) == MANAGED_BY
    }
    done = []
    for key, endpoint_slice in wanted.items():
        current = ours.get(key)
        if current is None or _differs(current, endpoint_slice):
            done.append(f"endpointslice {key} {api.apply(endpoint_slice)}")
    for key in ours.keys() - wanted.keys():
        namespace, name = key.split("/", 1)
        api.delete("EndpointSlice", name, namespace)
        done.append(f"endpointslice {key} deleted")
    return done


def _differs(current: Object, wanted: Object) -> bool:
    return any(current.get(field) != wanted.get(field) for field in _COMPARED) or (
        current["metadata"].get("labels") != wanted["metadata"]["labels"]
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kuberouter.cluster.controller_manager")
    parser.add_argument("--kubeconfig", required=True, type=Path)
    parser.add_argument("--netns", required=True, help="where the API server is reachable")
    parser.add_argument("--period", type=float, default=0.2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    api = Api(args.kubeconfig, args.netns)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    log.info("controller manager: EndpointSlices every %.2fs", args.period)
    while not stopping:
        try:
            for line in sync(api):
                log.info("%s", line)
        except (ApiError, OSError) as error:
            log.warning("sync failed, retrying: %s", error)
        time.sleep(args.period)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
