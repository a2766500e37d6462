"""A real multi-host Ray cluster on one machine: hosts are Linux network namespaces.

Each host gets its own namespace, its own IP on a private bridge, its own Ray temp dir and its own
working folder (`var/`), so nothing is shared by accident but the file system (which Ray does not
use to talk between nodes). An edge host without Ray stands for the outside world (operators,
market and account sources). Everything is torn down by PID — every process in a host's namespace
is killed, then the namespace and the bridge are deleted — never with `ray stop`, which is not
namespace-aware and would kill other Ray sessions of this machine.

Needs root and `ip` (iproute2); `available()` says why not where it cannot run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

RAY_PORT = 6390
CLIENT_PORT = 10001


def available() -> str | None:
    """None when a namespace cluster can be built here, else the reason it cannot."""
    if sys.platform != "linux":
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "needs the ip command (iproute2)"
    probe = f"fkprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@dataclass
class Host:
    name: str
    netns: str
    ip: str
    workdir: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    def popen(self, argv: list[str], env: dict[str, str] | None = None,
              log: str | None = None) -> subprocess.Popen:  # fmt: skip
        """Start a process inside this host (its own process group, output to a log file)."""
        out = open(self.workdir / (log or f"{Path(argv[0]).name}.log"), "ab")  # noqa: SIM115
        proc = subprocess.Popen(["ip", "netns", "exec", self.netns, *argv], cwd=self.workdir,
                                env={**os.environ, **(env or {})}, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.procs.append(proc)
        return proc

    def run(self, argv: list[str], env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:  # fmt: skip
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], cwd=self.workdir,
                              env={**os.environ, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout)  # fmt: skip

    def pids(self) -> list[int]:
        out = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    def kill(self) -> None:
        """Power off: SIGKILL every process of this host's namespace."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


class NetnsCluster:
    """Hosts on a private bridge; `start_ray()` makes the first a head and the rest workers."""

    _made = 0

    def __init__(
        self, names: list[str], ray_hosts: list[str], python: str = sys.executable
    ) -> None:
        # Unique per cluster of this process too (a test may build its own beside the session's).
        NetnsCluster._made += 1
        n = NetnsCluster._made
        tag = f"{os.getpid() % 10000}{n}"
        self.subnet = f"10.{77 + os.getpid() % 100}.{(os.getpid() + 17 * n) % 250}"
        self.bridge = f"fkbr{tag}"[:15]
        self.root = Path(tempfile.mkdtemp(prefix="fengkong-cluster-"))
        self.python = python
        self.ray_bin = str(Path(python).with_name("ray"))
        self.hosts: dict[str, Host] = {}
        self.ray_hosts = ray_hosts
        self.env = {"RAY_AUTH_MODE": "token", "RAY_DEDUP_LOGS": "0",
                    "RAY_USAGE_STATS_ENABLED": "0"}  # fmt: skip
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, name in enumerate(names):
            netns, veth = f"fk{tag}-{name}", f"fk{tag}{name}"[:15]
            _ip("netns", "add", netns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns)
            _ip("link", "set", veth, "master", self.bridge, "up")
            ip = f"{self.subnet}.{10 + i}"
            _ip("-n", netns, "addr", "add", f"{ip}/24", "dev", "eth0")
            _ip("-n", netns, "link", "set", "eth0", "up")
            _ip("-n", netns, "link", "set", "lo", "up")
            _ip("-n", netns, "route", "add", "default", "via", f"{self.subnet}.1")
            workdir = self.root / name
            (workdir / "var").mkdir(parents=True)
            self.hosts[name] = Host(name, netns, ip, workdir)

    @property
    def head(self) -> Host:
        return self.hosts[self.ray_hosts[0]]

    @property
    def gcs_address(self) -> str:
        return f"{self.head.ip}:{RAY_PORT}"

    @property
    def client_address(self) -> str:
        return f"ray://{self.head.ip}:{CLIENT_PORT}"

    def start_ray(self, cpus: int = 1, resources: dict[str, str] | None = None) -> None:
        """Head then workers, each `ray start --block` (so its PID is the node), own temp dir.
        `resources` maps a host to a JSON resources string, e.g. '{"fengkong_journal": 1}'."""
        self.cpus, self.resources = cpus, dict(resources or {})
        for i, name in enumerate(self.ray_hosts):
            self._start_node(name)
            if i == 0:
                self.wait_ray_nodes(1)
        self.wait_ray_nodes(len(self.ray_hosts))

    def _start_node(self, name: str) -> None:
        host = self.hosts[name]
        argv = [self.ray_bin, "start", "--block", f"--node-ip-address={host.ip}",
                f"--num-cpus={self.cpus}", f"--temp-dir={host.workdir / 'ray'}",
                "--disable-usage-stats"]  # fmt: skip
        if name == self.ray_hosts[0]:
            argv += ["--head", f"--port={RAY_PORT}", f"--ray-client-server-port={CLIENT_PORT}",
                     "--include-dashboard=false"]  # fmt: skip
        else:
            argv += [f"--address={self.gcs_address}"]
        if name in self.resources:
            argv += [f"--resources={self.resources[name]}"]
        host.popen(argv, self.env, log="ray.log")

    def revive(self, name: str) -> None:
        """Power a killed worker host back on: its Ray node joins again (a new node id)."""
        self._start_node(name)
        self.wait_ray_nodes(len(self.ray_hosts))

    def wait_ray_nodes(self, n: int, timeout: float = 300) -> None:
        """Wait until the head's GCS lists `n` alive nodes (polled from the edge of the head)."""
        script = ("import ray,sys; ray.init(address=sys.argv[1], logging_level='ERROR');"
                  "print(sum(1 for x in ray.nodes() if x['Alive']))")  # fmt: skip
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                done = self.head.run([self.python, "-c", script, self.gcs_address], self.env, 60)
            except subprocess.TimeoutExpired:
                continue  # a loaded machine: ask again until the deadline
            last = (done.stdout.strip().splitlines() or [""])[-1]
            if last.isdigit() and int(last) >= n:
                return
            time.sleep(1.0)
        raise TimeoutError(f"{n} Ray nodes not alive after {timeout:.0f} s (last count {last!r})")

    def teardown(self) -> None:
        """Kill every process of every host by PID, delete the namespaces and the bridge."""
        for host in self.hosts.values():
            host.kill()
        for host in self.hosts.values():
            subprocess.run(["ip", "netns", "del", host.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)


# The layout every cluster test uses: the head offers the market edge (a stable address for the
# publishers outside) and no shard; w1 offers shards; w2 shards and the journal (durable storage).
STANDARD_RESOURCES = {
    "head": '{"fengkong_edge": 1}',
    "w1": '{"fengkong_shard": 1}',
    "w2": '{"fengkong_shard": 1, "fengkong_journal": 1}',
}
# A powered-off node refuses the health check at once: checked every second, it is noticed
# dead in about 5 s instead of Ray's default ~15 s (docs/deploy.md), while a node that is only
# slow (a loaded machine) keeps Ray's 10 s to answer each check.
FAST_HEALTH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "10000",
               "RAY_health_check_failure_threshold": "5"}  # fmt: skip


def build_standard() -> NetnsCluster:
    """head + w1 + w2 running Ray (one CPU each, STANDARD_RESOURCES) and an edge host without
    Ray. Raises RuntimeError with the reason where namespaces cannot be made."""
    why = available()
    if why:
        raise RuntimeError(f"no namespace cluster here: {why}")
    cluster = NetnsCluster(["head", "w1", "w2", "edge"], ray_hosts=["head", "w1", "w2"])
    cluster.env.update(FAST_HEALTH)
    try:
        cluster.start_ray(cpus=1, resources=STANDARD_RESOURCES)
    except BaseException:
        cluster.teardown()
        raise
    return cluster


@contextmanager
def standard_cluster() -> Iterator[NetnsCluster]:
    """`build_standard()` for a test: skipped with the reason where namespaces cannot be made;
    torn down by PID afterwards."""
    import pytest

    why = available()
    if why:
        pytest.skip(f"no namespace cluster here: {why}")
    cluster = build_standard()
    try:
        yield cluster
    finally:
        cluster.teardown()
