"""Ray bound to the configured interface with token authentication on (issue 13 item 5).

Before: `start_ray` started a local Ray on the machine's routable address with whatever
authentication mode the environment had (this Ray build defaults to none). A real Ray started in
a subprocess the way the `fengkong` command starts it (RAY_AUTH_MODE unset, a HOME of its own so
the token Ray writes lands in the test's folder): it binds on 127.0.0.1, requires a token, and
wrote one; `[cluster] node_ip_address` and an operator's RAY_AUTH_MODE=disabled are honoured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from infra.cluster_env import token_auth_default
from infra.config import ClusterConfig
from tests.zmq_util import free_tcp_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, os, sys
from infra.cluster_env import token_auth_default
token_auth_default()            # what `fengkong` does before any command imports Ray
import ray
from ray._raylet import AuthenticationMode, get_authentication_mode
from infra.cluster import start_ray
from infra.config import ClusterConfig
start_ray(ClusterConfig(dashboard_port=int(sys.argv[1])))
print(json.dumps({"ip": [n["NodeManagerAddress"] for n in ray.nodes()],
                  "token": get_authentication_mode() == AuthenticationMode.TOKEN}))
ray.shutdown()
"""


def _free_port() -> int:
    return free_tcp_port()


def test_a_local_ray_binds_to_loopback_with_token_auth(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(HOME=str(tmp_path), PYTHONPATH=str(ROOT), RAY_USAGE_STATS_ENABLED="0")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(_free_port())], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen == {"ip": ["127.0.0.1"], "token": True}
    assert (tmp_path / ".ray" / "auth_token").exists(), "Ray wrote the cluster's token"


def test_the_operator_setting_wins_and_the_interface_is_configurable(monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    token_auth_default()
    assert os.environ["RAY_AUTH_MODE"] == "disabled"
    monkeypatch.delenv("RAY_AUTH_MODE")
    token_auth_default()
    assert os.environ["RAY_AUTH_MODE"] == "token"
    assert ClusterConfig().node_ip_address == "" and ClusterConfig().dashboard_host == "127.0.0.1"
    assert ClusterConfig(node_ip_address="10.0.0.5").node_ip_address == "10.0.0.5"
