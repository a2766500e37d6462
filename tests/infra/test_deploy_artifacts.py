"""The deployment artifacts are checked like code: manifests parse and say what the docs say,
the shipped config validates, and every metric the dashboard charts is one the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import ray
import yaml

from infra import config as config_mod

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / "kubernetes" / name).read_text()) if d]


def test_raycluster_places_shards_and_journal_by_resources() -> None:
    (cluster,) = _docs("raycluster.yaml")
    assert cluster["apiVersion"] == "ray.io/v1" and cluster["kind"] == "RayCluster"
    spec = cluster["spec"]
    assert spec["rayVersion"] == ray.__version__  # the image's Ray is the one we test with
    assert spec["authOptions"] == {"mode": "token", "secretName": "fengkong-ray-token"}
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0"  # nothing CPU-bound on the head
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"shards", "journal"}
    for name, resource in (("shards", "fengkong_shard"), ("journal", "fengkong_journal")):
        params = groups[name]["rayStartParams"]
        assert json.loads(json.loads(params["resources"])) == {resource: 1}
        assert params["metrics-export-port"] == "8080"
    journal = groups["journal"]
    assert journal["replicas"] == journal["maxReplicas"] == 1  # one writer of the journal file
    pod = journal["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    claims = {
        v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]
    }
    assert claims["journal"] == "fengkong-journal" and mounts["journal"] == "/var/lib/fengkong"
    assert pod["nodeSelector"] == {"fengkong.io/durable": "true"}
    (pvc,) = _docs("storage.yaml")
    assert pvc["metadata"]["name"] == "fengkong-journal"
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    images = {
        c["image"] for g in [head, *groups.values()] for c in g["template"]["spec"]["containers"]
    }
    assert images == {"fengkong:0.1.0"}


def test_shipped_config_validates_and_journals_on_the_volume(tmp_path: Path) -> None:
    (cm,) = _docs("config.yaml")
    path = tmp_path / "fengkong.toml"
    path.write_text(cm["data"]["fengkong.toml"])
    cfg = config_mod.load(str(path))
    assert Path(cfg.audit.path).parent == Path("/var/lib/fengkong")
    assert cfg.accounts.shards >= 3


def test_rayjob_runs_fengkong_on_the_cluster() -> None:
    (job,) = _docs("rayjob.yaml")
    assert job["kind"] == "RayJob" and job["spec"]["clusterSelector"] == {
        "ray.io/cluster": "fengkong"
    }
    argv = job["spec"]["entrypoint"].split()
    assert argv[:2] == ["fengkong", "run"] and "--config" in argv


def test_dockerfile_copies_what_exists() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for src in re.findall(r"^COPY (\S+)", text, re.M):
        assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
    assert "zh_CN.GB18030" in text  # the CTP library aborts without this locale


def _exported_metrics() -> set[str]:
    names = set()
    for path in [
        *ROOT.glob("actors/**/*.py"),
        *ROOT.glob("app/**/*.py"),
        *ROOT.glob("gateways/**/*.py"),
    ]:
        text = path.read_text()
        # infra.metrics.counter("name"), the shell's self.metric("gauge", "name"), set_gauge("name")
        for pattern in (r"metrics\.(?:counter|gauge|histogram)\(\s*\"([a-z0-9_]+)\"",
                        r"metric\(\s*\"(?:counter|gauge|histogram)\",\s*\"([a-z0-9_]+)\"",
                        r"set_gauge\(\s*\"([a-z0-9_]+)\""):  # fmt: skip
            names.update(m.group(1) for m in re.finditer(pattern, text))
    return names


def test_every_dashboard_metric_is_exported_by_the_code() -> None:
    dash = json.loads((DEPLOY / "grafana" / "fengkong-dashboard.json").read_text())
    used = set()
    for panel in dash["panels"]:
        for target in panel["targets"]:
            used |= {
                m.removesuffix("_bucket")
                for m in re.findall(r"ray_fengkong_([a-z0-9_]+)", target["expr"])
            }
    missing = sorted(used - _exported_metrics())
    assert not missing, f"dashboard charts metrics no code exports: {missing}"
    assert {"tick_to_alert_ms", "alerts_total", "notifications_total", "pending_approvals",
            "journal_lag_ms"} <= used  # fmt: skip


def test_prometheus_scrapes_the_metrics_port() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
    keep = [r for r in jobs["fengkong-ray-k8s"]["relabel_configs"] if r.get("action") == "keep"]
    assert {r["regex"] for r in keep} == {"fengkong", "metrics"}


@pytest.mark.parametrize("name", ["raycluster.yaml", "rayjob.yaml", "storage.yaml", "config.yaml"])
def test_manifests_have_kind_and_name(name: str) -> None:
    for doc in _docs(name):
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"]
