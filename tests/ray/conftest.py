"""The Ray lane: `replay` from Ray actors (replay/ray_workers.py) on a local multi-node cluster.

`make test-ray` runs them (`pytest -m ray tests/ray`) in `.venv-ray`, a virtualenv of their own
with ray[default] installed; in any environment without Ray (the default `make test`), every
test marked `ray` is skipped with one reason line before a cluster is started.

`ray_cluster` is session-scoped: `ray.cluster_utils.Cluster` with two nodes of one CPU each on
this machine (a head and one more; each node its own raylet and object store), this process
connected to it as the driver. Its teardown stops every node.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from typing import Any

import pytest

SKIP_REASON = "Ray is not installed here: make test-ray runs these tests in .venv-ray"


def _have_ray() -> bool:
    """Ray is installed — a real package, not the namespace package that this very folder,
    tests/ray, looks like to an import system with tests/ on sys.path."""
    try:
        spec = importlib.util.find_spec("ray")
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _have_ray():
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if item.get_closest_marker("ray") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    """A local Ray cluster of two one-CPU nodes, this process connected as its driver."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={"num_cpus": 1, "include_dashboard": False},
    )
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
