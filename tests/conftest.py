"""Ray is started once per test session (it costs seconds); tests that need it ask for `ray_local`."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_local():
    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    # Tests run with log_to_driver=False, so nobody reads what Ray's log monitor publishes; by
    # default it globs the log folder ten times a second, and a suite leaves ~600 worker log
    # files there (about 10 CPU-seconds per test process). Above this threshold it globs twice
    # a second; 0 applies that from the start. Set before ray.init: the monitor reads it once.
    os.environ.setdefault("RAY_LOG_MONITOR_MANY_FILES_THRESHOLD", "0")
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
