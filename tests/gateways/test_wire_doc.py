"""docs/accounts-wire.md and gateways.accounts.wire agree: every record kind has a worked
example that passes the checks, and every required field is documented."""

from __future__ import annotations

import json
import re
from pathlib import Path

from gateways.accounts.wire import POSITION_REQUIRED, RECORD_TYPES, REQUIRED, record_problem

DOC = Path(__file__).resolve().parents[2] / "docs" / "accounts-wire.md"


def _examples() -> list[dict]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    out = []
    for block in blocks:
        for line in re.split(r"\n(?=\{)", block.strip()):
            out.append(json.loads(line))
    return out


def test_every_kind_has_a_valid_worked_example():
    examples = _examples()
    kinds = {e["type"] for e in examples}
    assert kinds | {"withdraw"} == RECORD_TYPES  # withdraw: "the same with type withdraw"
    for record in examples:
        assert record_problem(record) is None, record


def test_every_required_field_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for kind in RECORD_TYPES:
        assert f"## {kind}" in text or kind in ("deposit", "withdraw", "cancel")
        for name, _shape in REQUIRED[kind]:
            assert f"`{name}`" in text, (kind, name)
    for name, _shape in POSITION_REQUIRED:
        assert f"`{name}`" in text
