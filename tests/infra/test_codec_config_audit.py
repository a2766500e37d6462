from __future__ import annotations

import msgpack
import numpy as np
import pytest

from infra import config
from infra.audit import AuditStore
from infra.codec import (
    CodecError,
    decode_records,
    decode_ticks,
    encode_records,
    encode_ticks,
    split_bad_ticks,
)
from rules.model import TickBatch


def _batch(last):
    n = len(last)
    z = np.zeros(n)
    return TickBatch(
        instruments=["rb2601", "cu2601"],
        instrument_idx=np.arange(n, dtype=np.uint32) % 2,
        last=np.array(last, dtype=float),
        volume=z,
        open_interest=z,
        bid=z,
        ask=z,
        exchange_ts=z,
        upper_limit=z,
        lower_limit=z,
        pre_settlement=z,
    )


def test_tick_roundtrip_and_bad_prices_split():
    batch = decode_ticks(encode_ticks(_batch([3000.0, float("nan"), 3001.0, -1.0])))
    assert batch.names() == ["rb2601", "cu2601", "rb2601", "cu2601"]
    good, bad = split_bad_ticks(batch)
    # -1.0 is a price (a non-positive price is marked, not rejected); only NaN/inf are bad
    assert bad.tolist() == [False, True, False, False]
    assert good.last.tolist() == [3000.0, 3001.0, -1.0]


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"\xc1garbage", "not a msgpack"),
        (msgpack.packb([1, 2]), "expected a map"),
        (msgpack.packb({"v": 99, "kind": "ticks"}), "schema version"),
        (
            msgpack.packb(
                {"v": 1, "kind": "ticks", "n": 2, "instruments": ["a"], "cols": {"last": b"x"}}
            ),
            "column",
        ),
    ],
)
def test_malformed_frames_are_rejected_with_reason(payload, message):
    with pytest.raises(CodecError, match=message):
        decode_ticks(payload)


def test_records_roundtrip():
    assert decode_records(encode_records("orders", [{"a": 1}]), "orders") == ("orders", [{"a": 1}])
    with pytest.raises(CodecError):
        decode_records(encode_records("orders", [{"a": 1}]), "fills")


def test_config_errors_name_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[accounts]\nshards = 'two'\n")
    with pytest.raises(config.ConfigError, match=r"bad.toml: accounts.shards: expected an integer"):
        config.load(bad)
    bad.write_text("[market]\nflush_msec = 10\n")
    with pytest.raises(config.ConfigError, match="did you mean 'flush_ms'"):
        config.load(bad)
    bad.write_text("[[rules]]\nid='x'\nseverity='loud'\n")
    with pytest.raises(config.ConfigError, match=r"rules\[0\] \(x\).severity"):
        config.load(bad)
    with pytest.raises(config.ConfigError, match="not valid TOML"):
        bad.write_text("[[[")
        config.load(bad)


def test_every_table_rejects_unknown_keys_with_a_did_you_mean_channels_too(tmp_path):
    bad = tmp_path / "ch.toml"
    ok = '[[channels]]\nname = "w"\ntype = "wecom"\nkey_env = "K"\nmarkdown = true\nto = ["a"]\n'
    bad.write_text(ok)
    [ch] = config.load(bad).channels
    assert (ch.name, ch.type, ch.settings) == ("w", "wecom", {"key_env": "K", "markdown": True,
                                                              "to": ["a"]})  # fmt: skip
    bad.write_text(ok.replace("markdown", "markdwn"))
    with pytest.raises(
        config.ConfigError,
        match=r"ch.toml: channels\[0\] \(w\).markdwn: unknown key for a wecom channel "
        r"\(did you mean 'markdown'\?\)",
    ):
        config.load(bad)
    bad.write_text('[[channels]]\nname = "s"\ntype = "twilio_sms"\nfrom = "+1"\nrate_limt = 5\n')
    with pytest.raises(config.ConfigError, match="did you mean 'rate_limit'"):
        config.load(bad)
    bad.write_text('[[channels]]\nname = "s"\ntype = "email"\nring_timeout_s = 5\n')
    with pytest.raises(config.ConfigError, match="ring_timeout_s: unknown key for a email"):
        config.load(bad)  # a key of another channel type
    bad.write_text('[[channels]]\ntype = "email"\n')
    with pytest.raises(config.ConfigError, match=r"channels\[0\].name: missing"):
        config.load(bad)
    for table, key, near in (("[accounts.fund_flow]", "single_limt", "single_limit"),
                             ("[[books.limits]]\nid = 'l'", "treshold", "threshold"),
                             ("[[market.rules]]\nid = 'j'", "sesions", "sessions"),
                             ("[notifier.operator]", "link_tl_s", "link_ttl_s")):  # fmt: skip
        bad.write_text(f"{table}\n{key} = 1\n")
        with pytest.raises(config.ConfigError, match=f"did you mean '{near}'"):
            config.load(bad)


def test_example_config_loads():
    cfg = config.load("examples/fengkong.toml")
    assert cfg.accounts.shards >= 1 and cfg.rules


def test_journal_chain_detects_edit_delete_and_reorder(tmp_path):
    store = AuditStore(tmp_path / "j.sqlite")
    store.append([{"kind": "alert", "key": f"A{i}", "value": i} for i in range(5)])
    assert store.verify() == []
    assert [r["key"] for r in store.query(kind="alert")] == ["A0", "A1", "A2", "A3", "A4"]
    store.db.execute("UPDATE journal SET payload = '{\"value\": 99}' WHERE seq = 3")
    store.db.conn.commit()
    assert [b.seq for b in store.verify()] == [3]
    store.db.execute("DELETE FROM journal WHERE seq = 4")
    store.db.conn.commit()
    assert {b.seq for b in store.verify()} >= {3, 4}
    # a reopened store continues the chain from the last record
    reopened = AuditStore(tmp_path / "j.sqlite")
    assert reopened.last_seq == 5
