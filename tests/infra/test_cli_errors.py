"""Every operator-facing error is one line with its reason, never a traceback; `--debug` shows
the traceback (issue 19). These mistakes are caught before anything connects to Ray."""

from __future__ import annotations

import pytest

from app.cli import main
from infra.audit import AuditStore


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_accounts_by_an_unknown_figure_is_one_line(capsys):
    assert main(["accounts", "top", "--by", "bogus"]) == 2
    err = _one_line(capsys)
    assert "--by 'bogus': not a figure" in err and "risk_degree" in err


def test_audit_search_from_a_word_is_one_line(tmp_path, capsys):
    journal = tmp_path / "j.sqlite"
    AuditStore(journal)
    code = main(["audit", "search", "--journal", str(journal), "--from", "yesterday"])
    assert code == 2
    assert "time 'yesterday': not a time; give YYYY-MM-DD" in _one_line(capsys)


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="not a figure"):
        main(["accounts", "top", "--by", "bogus", "--debug"])


def test_pending_proposals_say_what_approving_will_do():
    from app.cli import proposal_lines

    ts = 1_796_261_465.0  # 2026-12-03 09:31:05 北京时间
    row = {
        "proposal_id": "p-1", "kind": "reduce", "account_id": "ACC000123",
        "target_risk_degree": 0.8, "created_ts": ts, "stage": "risk desk 0/1", "group_id": "g1",
        "reason": "risk degree 95.0%",
        "preview": {"legs": 2, "notional": 1234567.0, "projected_risk_degree": 0.7982},
    }  # fmt: skip
    head, how = proposal_lines([row])
    assert "target 80.0%" in head and "2 order(s), ¥1,234,567.00, risk degree after 79.8%" in head
    assert "2026-12-03 09:31:05 北京时间" in head and how.strip() == "fengkong approve p-1"


def test_a_positions_row_with_missing_columns_names_file_and_line(tmp_path):
    from app.backtest import BacktestInputError, build_book
    from infra.specs import load_contract_table

    accounts = tmp_path / "accounts.csv"
    accounts.write_text("account_id,group_path,pre_balance\nA1,g/a,1000000\n", encoding="utf-8")
    positions = tmp_path / "positions.csv"
    positions.write_text(
        "account_id,contract,direction,volume,cost_price\nA1,rb2601,long,3,3000\nA1,rb2601\n",
        encoding="utf-8",
    )
    with pytest.raises(BacktestInputError) as err:
        build_book(accounts, positions, load_contract_table([]))
    assert str(err.value) == (
        f"{positions}:3: missing direction, volume, cost_price (the row has fewer columns than "
        "the header)"
    )
