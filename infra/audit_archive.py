"""Daily archive of the journal: one compressed file per day and a manifest of hashes.

The archive is a copy (the journal stays whole, so its chain still verifies from record 1); what
it adds is a file an auditor can take away and check on its own: every record keeps its seq,
prev_hash and hash, the manifest names the first and last of them and the file's SHA-256, and
`MANIFEST.jsonl` lists every day in order, so a missing or altered day shows.

Encryption: when a key is configured (32 bytes, hex or urlsafe base64, from an environment
variable), the gzip body is sealed with AES-256-GCM from `cryptography` — already installed as a
Ray dependency; the standard library has no authenticated cipher. The day is bound in as
associated data, so a file renamed to another day fails to open.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from infra.audit import GENESIS, TABLE, AuditStore, record_hash

MAGIC = b"FKA1"
BEIJING = dt.timezone(dt.timedelta(hours=8))
FIELDS = ("seq", "ts", "kind", "actor", "key", "ref", "payload", "prev_hash", "hash")


class ArchiveError(ValueError):
    """An archive that does not open or does not match its manifest; the message says where."""


def parse_key(text: str) -> bytes:
    """A 32-byte key from 64 hex characters or urlsafe base64."""
    text = text.strip()
    try:
        key = bytes.fromhex(text) if len(text) == 64 else base64.urlsafe_b64decode(text + "==")
    except (ValueError, binascii.Error) as exc:
        raise ArchiveError(f"archive key is neither hex nor base64: {exc}") from None
    if len(key) != 32:
        raise ArchiveError(f"archive key must be 32 bytes, got {len(key)}")
    return key


def key_from_env(name: str) -> bytes | None:
    value = os.environ.get(name, "") if name else ""
    return parse_key(value) if value else None


def day_bounds(day: str) -> tuple[float, float]:
    """[start, end) epoch seconds of a calendar day in Beijing time (YYYY-MM-DD or YYYYMMDD)."""
    d = dt.datetime.strptime(day.replace("-", ""), "%Y%m%d").replace(tzinfo=BEIJING)
    return d.timestamp(), (d + dt.timedelta(days=1)).timestamp()


def _seal(key: bytes, day: str, body: bytes) -> bytes:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(12)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, body, day.encode())


def _open(key: bytes, day: str, data: bytes) -> bytes:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not data.startswith(MAGIC):
        raise ArchiveError("not an encrypted fengkong archive")
    try:
        return AESGCM(key).decrypt(data[4:16], data[16:], day.encode())
    except InvalidTag:
        raise ArchiveError(
            "cannot decrypt: wrong key, wrong day, or the file was altered"
        ) from None


def archive_day(
    store: AuditStore, day: str, out_dir: str | Path, key: bytes | None = None
) -> dict[str, Any]:
    """Write the records stamped on `day` (Beijing) to out_dir; returns the manifest."""
    day = day.replace("-", "")
    since, until = day_bounds(day)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clause = store.time_clause(since, until, until_op="<")  # by (kind, ts): no scan
    rows = (
        store.db.execute(
            f"SELECT {', '.join(FIELDS)} FROM {TABLE} WHERE {clause[0]} ORDER BY seq", clause[1]
        ).fetchall()
        if clause is not None
        else []
    )
    lines = [json.dumps(dict(zip(FIELDS, r, strict=True)), ensure_ascii=False) for r in rows]
    raw = ("\n".join(lines) + ("\n" if lines else "")).encode()
    body = gzip.compress(raw, compresslevel=6, mtime=0)
    name = f"journal-{day}.jsonl.gz" + (".enc" if key else "")
    data = _seal(key, day, body) if key else body
    (out / name).write_bytes(data)
    manifest = {
        "day": day,
        "file": name,
        "records": len(rows),
        "first_seq": rows[0][0] if rows else None,
        "last_seq": rows[-1][0] if rows else None,
        "first_prev_hash": rows[0][7] if rows else None,
        "last_hash": rows[-1][8] if rows else None,
        "records_sha256": hashlib.sha256(raw).hexdigest(),
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "encrypted": bool(key),
        "cipher": "AES-256-GCM" if key else "",
        "journal_tip": [store.last_seq, store.last_hash],
    }
    (out / f"journal-{day}.manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    with (out / "MANIFEST.jsonl").open("a") as index:
        index.write(json.dumps(manifest, sort_keys=True) + "\n")
    return manifest


def read_archive(path: str | Path, key: bytes | None = None) -> list[dict[str, Any]]:
    """The records of one archive file (decrypted when it is sealed)."""
    p = Path(path)
    data = p.read_bytes()
    if p.name.endswith(".enc"):
        if key is None:
            raise ArchiveError(f"{p.name} is encrypted and no key is configured")
        day = p.name.split("-", 1)[1].split(".", 1)[0]
        data = _open(key, day, data)
    raw = gzip.decompress(data)
    return [json.loads(line) for line in raw.decode().splitlines() if line]


def verify_archive(manifest_path: str | Path, key: bytes | None = None) -> list[str]:
    """Problems of one day's archive against its manifest and its own chain ([] when sound)."""
    mpath = Path(manifest_path)
    manifest = json.loads(mpath.read_text())
    file = mpath.parent / manifest["file"]
    problems: list[str] = []
    if not file.exists():
        return [f"{file.name}: missing"]
    if hashlib.sha256(file.read_bytes()).hexdigest() != manifest["file_sha256"]:
        problems.append(f"{file.name}: file hash differs from the manifest (altered)")
    try:
        records = read_archive(file, key)
    except (ArchiveError, OSError, ValueError) as exc:
        return problems + [f"{file.name}: {exc}"]
    if len(records) != manifest["records"]:
        problems.append(f"{file.name}: {len(records)} records, manifest says {manifest['records']}")
    prev = records[0]["prev_hash"] if records else GENESIS
    for r in records:
        if r["prev_hash"] != prev:
            problems.append(f"record {r['seq']}: does not follow the record before it")
        digest = record_hash(
            r["prev_hash"], r["seq"], r["ts"], r["kind"], r["actor"], r["key"], r["ref"],
            r["payload"],
        )  # fmt: skip
        if digest != r["hash"]:
            problems.append(f"record {r['seq']}: edited (content does not match its hash)")
        prev = r["hash"]
    if records and records[-1]["hash"] != manifest["last_hash"]:
        problems.append(f"{file.name}: last hash differs from the manifest")
    return problems
