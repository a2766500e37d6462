"""The namespace cluster is built once per session for the tests that ask for it; a test that
kills nodes of its own builds another one with the same factory (netns.standard_cluster)."""

from __future__ import annotations

import pytest

from tests.cluster.netns import standard_cluster


@pytest.fixture(scope="session")
def netns_cluster():
    with standard_cluster() as cluster:
        yield cluster
