"""Placement from `[cluster]`: what each role asks Ray for, on a laptop and on a labelled cluster,
and the journal path `fengkong run` settles on."""

from __future__ import annotations

import pytest

from app.run_command import resolve_journal
from infra import config
from infra.cluster import Placement
from infra.config import ClusterConfig, ConfigError

LABELLED = {"CPU": 8.0, "fengkong_shard": 2.0, "fengkong_journal": 1.0}


def test_a_laptop_gets_no_custom_resources_and_shards_still_spread() -> None:
    p = Placement(ClusterConfig(), offered={"CPU": 2.0})
    assert p.options("AccountShard") == {"num_cpus": 0.0, "scheduling_strategy": "SPREAD"}
    assert p.options("AuditLog") == {"num_cpus": 0.0}
    assert p.options("Correlator") == {"num_cpus": 0.0}


def test_a_labelled_cluster_pins_the_journal_roles_and_spreads_shards() -> None:
    cluster = ClusterConfig(num_cpus={"AccountShard": 1.0, "AuditLog": 0.5})
    p = Placement(cluster, detached=True, offered=LABELLED)
    shard = p.options("AccountShard")
    assert shard["resources"] == {"fengkong_shard": 0.01}
    assert shard["scheduling_strategy"] == "SPREAD" and shard["num_cpus"] == 1.0
    for role in ("AuditLog", "Executor", "Notifier"):
        assert p.options(role)["resources"] == {"fengkong_journal": 0.01}
    assert p.options("AuditLog")["num_cpus"] == 0.5
    assert "resources" not in p.options("MarketFeed")
    assert all(
        p.options(r)["lifetime"] == "detached" and p.options(r)["max_restarts"] == -1
        for r in ("AccountShard", "AuditLog", "Correlator")
    )


def test_num_cpus_must_be_non_negative_numbers() -> None:
    with pytest.raises(ConfigError, match=r"cluster.num_cpus.AccountShard"):
        config.from_dict({"cluster": {"num_cpus": {"AccountShard": -1}}})


def test_cluster_keys_load_from_toml(tmp_path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('[cluster]\nshard_resource = "ssd"\nnum_cpus = {AccountShard = 2}\n')
    cfg = config.load(f)
    assert cfg.cluster.shard_resource == "ssd" and cfg.cluster.num_cpus == {"AccountShard": 2}


def test_the_journal_path_is_absolute_per_run_and_relative_to_the_config(tmp_path) -> None:
    f = tmp_path / "etc" / "c.toml"
    f.parent.mkdir()
    f.write_text("")
    cfg = resolve_journal(config.load(f), "run1")
    assert cfg.audit.path == str(tmp_path / "etc" / "var" / "runs" / "run1" / "journal.sqlite")
    f.write_text('[audit]\npath = "../data/j.sqlite"\n')
    assert resolve_journal(config.load(f), "run2").audit.path == str(
        tmp_path / "etc" / ".." / "data" / "j.sqlite"
    )
    f.write_text(f'[audit]\npath = "{tmp_path}/abs.sqlite"\n')
    assert resolve_journal(config.load(f), "run3").audit.path == str(tmp_path / "abs.sqlite")
