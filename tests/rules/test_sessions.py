"""Session calendar: night trading belongs to the next trading day, holidays cancel nights."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pytest

from infra.holidays import load_holidays
from infra.specs import load_contract_table
from rules.sessions import BEIJING, LABEL_BITS, SessionCalendar, label_mask

EXAMPLE_HOLIDAYS = Path(__file__).resolve().parents[2] / "examples" / "holidays.json"
WTPY_HOLIDAYS = Path("/work/shared/data/specs/wtpy_holidays.json")


def at(text: str) -> float:
    """Beijing wall time 'YYYY-MM-DD HH:MM' as epoch seconds."""
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=BEIJING).timestamp()


@pytest.fixture(scope="module")
def cal() -> SessionCalendar:
    return SessionCalendar.from_table(load_contract_table(), load_holidays(EXAMPLE_HOLIDAYS))


def test_night_trading_belongs_to_the_next_trading_day(cal):
    # Friday 2026-01-09 night and its after-midnight part are Monday's.
    assert cal.trading_day(at("2026-01-09 21:30")) == date(2026, 1, 12)
    assert cal.trading_day(at("2026-01-10 01:30")) == date(2026, 1, 12)
    assert cal.trading_day(at("2026-01-12 10:00")) == date(2026, 1, 12)
    assert cal.trading_day(at("2026-01-12 21:05")) == date(2026, 1, 13)
    assert cal.trading_day(at("2026-01-10 12:00")) == date(2026, 1, 12)  # Saturday daytime


def test_sessions_per_product(cal):
    friday_night = at("2026-01-09 22:30")
    assert cal.state("rb", friday_night).labels == {"night"}
    assert cal.state("rb", at("2026-01-09 23:30")).section is None  # rb closes at 23:00
    assert cal.state("cu", at("2026-01-10 00:30")).in_session  # base metals until 01:00
    assert cal.state("au", at("2026-01-10 02:00")).in_session  # gold until 02:30
    assert not cal.state("cu", at("2026-01-10 02:00")).in_session
    assert not cal.state("IF", friday_night).in_session  # no night session for CFFEX
    assert not cal.state("rb", at("2026-01-12 10:20")).in_session  # the 10:15 break
    assert cal.state("IF", at("2026-01-12 10:20")).in_session  # CFFEX has no 10:15 break
    lunch = cal.state("rb", at("2026-01-12 12:00"))
    assert not lunch.in_session and lunch.trading_day == date(2026, 1, 12)


def test_edges_are_labelled(cal):
    assert cal.state("rb", at("2026-01-12 20:57")).labels == {"pre_open"}
    assert cal.state("rb", at("2026-01-12 21:02")).labels == {"night", "open"}
    assert cal.state("rb", at("2026-01-13 09:01")).labels == {"day", "open"}
    assert cal.state("rb", at("2026-01-13 14:57")).labels == {"day", "close"}
    assert cal.state("IF", at("2026-01-13 09:27")).labels == {"pre_open"}


def test_no_night_session_before_a_holiday(cal):
    # National Day 2026: 1-7 October. The evening of Wednesday 30 September does not trade,
    # nor does the evening of Friday 2 April before the Qingming Monday (6 April).
    assert cal.trading_day(at("2026-09-30 21:30")) == date(2026, 10, 8)
    assert not cal.state("rb", at("2026-09-30 21:30")).in_session
    assert not cal.has_night(date(2026, 10, 8))
    assert not cal.state("au", at("2026-04-03 21:30")).in_session
    assert not cal.state("rb", at("2026-10-05 10:00")).in_session  # holiday daytime
    assert cal.state("rb", at("2026-10-08 09:30")).in_session
    assert cal.state("rb", at("2026-10-08 21:30")).in_session  # the night after reopening
    # The previous section of the first one after the holiday is the last one before it.
    first = cal.state("rb", at("2026-10-08 09:30"))
    assert first.previous_start == at("2026-09-30 13:30")


def test_template_states_match_per_product_states(cal):
    table = load_contract_table()
    for when in ("2026-01-09 22:30", "2026-01-12 09:31", "2026-01-12 13:10", "2026-01-10 04:00"):
        ts = at(when)
        inside, start, previous, bits = cal.template_states(ts)
        for spec in table:
            t = cal.template(spec.product)
            st = cal.state(spec.product, ts)
            assert inside[t] == st.in_session, (when, spec.product)
            assert bits[t] == label_mask(st.labels)
            if st.in_session:
                assert start[t] == st.section.start
                assert previous[t] == st.previous_start
    assert LABEL_BITS["night"] & int(np.max(cal.template_states(at("2026-01-09 22:30"))[3]))


def test_holiday_files(tmp_path):
    days = load_holidays(EXAMPLE_HOLIDAYS)
    assert date(2026, 2, 17) in days and date(2026, 1, 5) not in days
    text = tmp_path / "holidays.txt"
    text.write_text("# exchange holidays\n20261001\n2026-10-02  # National Day\n\n")
    assert load_holidays(text) == {date(2026, 10, 1), date(2026, 10, 2)}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"CHINA": ["20261001", "2026-13-40"]}))
    with pytest.raises(ValueError, match=r"bad\.json: CHINA\[1\]: '2026-13-40' is not a date"):
        load_holidays(bad)
    bad_text = tmp_path / "bad.txt"
    bad_text.write_text("20261001\nsoon\n")
    with pytest.raises(ValueError, match=r"bad\.txt: line 2"):
        load_holidays(bad_text)


@pytest.mark.skipif(not WTPY_HOLIDAYS.exists(), reason="shared data folder absent")
def test_reads_the_wtpy_holiday_file():
    cal = SessionCalendar.from_table(load_contract_table(), load_holidays(WTPY_HOLIDAYS))
    # 2022-10-03..07 closed: the Friday 30 September 2022 night did not trade.
    assert not cal.state("rb", at("2022-09-30 21:30")).in_session
    assert cal.trading_day(at("2022-09-30 21:30")) == date(2022, 10, 10)
