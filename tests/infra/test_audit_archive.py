"""Daily archive: compressed file + manifest of hashes; AES-256-GCM when a key is configured."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from app.cli import main
from infra.audit import AuditStore
from infra.audit_archive import ArchiveError, archive_day, day_bounds, read_archive, verify_archive

DAY = "20261201"
KEY_HEX = "11" * 32


@pytest.fixture
def store(tmp_path):
    s = AuditStore(tmp_path / "j.sqlite")
    start, end = day_bounds(DAY)
    s.append([{"kind": "before", "ts": start - 10}])
    s.append([{"kind": "alert", "key": f"A{i}", "ts": start + 60 * i, "i": i} for i in range(50)])
    s.append([{"kind": "after", "ts": end + 10}])
    return s


def test_archive_holds_the_day_and_verifies(store, tmp_path):
    m = archive_day(store, DAY, tmp_path / "arch")
    assert m["records"] == 50 and (m["first_seq"], m["last_seq"]) == (2, 51)
    records = read_archive(tmp_path / "arch" / m["file"])
    assert [r["seq"] for r in records] == list(range(2, 52))
    assert json.loads(records[0]["payload"]) == {"i": 0}
    assert verify_archive(tmp_path / "arch" / f"journal-{DAY}.manifest.json") == []
    index = (tmp_path / "arch" / "MANIFEST.jsonl").read_text().splitlines()
    assert json.loads(index[0])["file_sha256"] == m["file_sha256"]


def test_tampered_archive_is_named(store, tmp_path):
    m = archive_day(store, DAY, tmp_path / "arch")
    path = tmp_path / "arch" / m["file"]
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    row = json.loads(lines[7])
    row["payload"] = '{"i": 999}'
    lines[7] = json.dumps(row)
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    problems = verify_archive(tmp_path / "arch" / f"journal-{DAY}.manifest.json")
    assert any("file hash differs" in p for p in problems)
    assert any(p.startswith(f"record {row['seq']}: edited") for p in problems)


def test_encrypted_archive_needs_the_key(store, tmp_path):
    key = bytes.fromhex(KEY_HEX)
    m = archive_day(store, DAY, tmp_path / "arch", key)
    path = tmp_path / "arch" / m["file"]
    assert m["encrypted"] and path.name.endswith(".jsonl.gz.enc")
    with pytest.raises(OSError):
        gzip.decompress(path.read_bytes())  # not readable without the key
    with pytest.raises(ArchiveError, match="no key"):
        read_archive(path)
    with pytest.raises(ArchiveError, match="cannot decrypt"):
        read_archive(path, bytes.fromhex("22" * 32))
    assert len(read_archive(path, key)) == 50
    assert verify_archive(tmp_path / "arch" / f"journal-{DAY}.manifest.json", key) == []


def test_cli_archive_and_verify_with_key_from_environment(store, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FENGKONG_ARCHIVE_KEY", KEY_HEX)
    out = tmp_path / "cli-arch"
    journal = str(store.path)
    assert main(["audit", "archive", "--journal", journal, "--day", DAY, "--out", str(out)]) == 0
    manifest = json.loads((out / f"journal-{DAY}.manifest.json").read_text())
    assert manifest["encrypted"] and manifest["records"] == 50
    assert KEY_HEX not in capsys.readouterr().out  # the key never appears in output
    assert main(["audit", "verify", "--journal", journal, "--archive", str(out)]) == 0
    os.remove(out / manifest["file"])
    assert main(["audit", "verify", "--journal", journal, "--archive", str(out)]) == 1
    assert "missing" in capsys.readouterr().out
