"""Ray is started once per test session (it costs seconds); tests that need it ask for `ray_local`."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_local():
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    if not ray.is_initialized():
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            namespace="fengkong-test",
            log_to_driver=False,
            configure_logging=False,
        )
    yield ray
    ray.shutdown()
