"""An ExposureBook on a real local Ray: inputs from a watched folder and a ZeroMQ topic, prices
from a MarketFeed, events to the Correlator, snapshots to the journal, and the daily report."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

import pytest
import ray
import zmq

from actors.audit_log import AuditLog, AuditLogSettings
from actors.correlator import Correlator
from actors.exposure_book import ExposureBook, ExposureBookSettings
from actors.market_feed import MarketFeed, MarketFeedSettings
from app import cli
from gateways.books.topic import publish
from infra import config
from infra.specs import load_contract_table
from rules.sessions import SessionCalendar
from rules.var import historical_var
from tests.integration.market_util import SteerableMarket
from tests.zmq_util import free_tcp_endpoint, wait_until

INVENTORY = """id,commodity,quantity,business_unit,location
W1,rb,3000,east,Shanghai
W2,rb,NaN,east,Shanghai
W3,rb,1000,north,Tianjin
Z1,zz,5,east,Nowhere
C1,cu,25,metals,Ningbo
"""
CONTRACTS = [
    {"id": "P1", "commodity": "rb", "side": "purchase", "quantity": 2000, "price": 3050,
     "delivery_date": "2026-04-15", "counterparty": "Steel Co", "business_unit": "east"},
    {"id": "S1", "commodity": "rb", "side": "sale", "quantity": 1500, "price": 3400,
     "delivery_date": "2026-04-20", "counterparty": "Builder", "business_unit": "north"},
]  # fmt: skip


def history_csv(today: date) -> str:
    """Spot and futures closes for the 60 days before today (a wave, so returns vary)."""
    lines = ["kind,commodity,date,price"]
    for i in range(60, 0, -1):
        d = (today - timedelta(days=i)).isoformat()
        lines.append(f"spot,rb,{d},{3050 + (i % 7) * 15}")
        lines.append(f"futures_close,rb,{d},{2990 + (i % 5) * 18}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def world(ray_local, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("operating")
    inputs = tmp / "inputs"
    inputs.mkdir()
    topic_ep, market_ep = free_tcp_endpoint(), free_tcp_endpoint()
    books_cfg = config.from_dict(
        {
            "books": {
                "inputs_dir": str(inputs),
                "inputs_endpoint": topic_ep,
                "scan_s": 0.2,
                "eval_s": 0.2,
                "snapshot_s": 0.5,
                "price_tolerance": 0.05,
                "counterparty_limits": {"Steel Co": 5_000_000},
                "limits": [
                    {"id": "rb.net", "metric": "abs_net_units", "threshold": 1500,
                     "rearm": 1200, "severity": "critical"},
                    {"id": "unit.value", "metric": "abs_net_value", "scope": "business_unit",
                     "threshold": 20_000_000, "rearm": 15_000_000},
                ],
            }
        },
        source="<test>",
    ).books  # fmt: skip
    audit = AuditLog.remote(AuditLogSettings(str(tmp / "journal.sqlite"), 50))
    corr = Correlator.remote(audit=audit)
    book = ExposureBook.remote(
        ExposureBookSettings("rb", ("rb",), books_cfg, ("rb", "cu"), report_unrouted=True),
        correlator=corr, audit=audit,
    )  # fmt: skip
    market = SteerableMarket(market_ep, {"rb2601": 3000.0})
    feed = MarketFeed.remote(
        MarketFeedSettings(
            "m", market_ep, 50, market=config.from_dict({"market": {"rules": []}}).market
        ),
        subscribers=[(book, "on_prices", 0.2)],
    )
    pub = zmq.Context.instance().socket(zmq.PUB)
    pub.bind(topic_ep)
    today = SessionCalendar.from_table(load_contract_table()).trading_day(time.time())
    yield {"tmp": tmp, "inputs": inputs, "book": book, "corr": corr, "audit": audit,
           "pub": pub, "today": today}  # fmt: skip
    pub.close(linger=0)
    market.stop()
    for actor in (feed, book, corr, audit):
        ray.kill(actor)


def test_book_from_files_topic_prices_and_shards(world):
    book, inputs, today = world["book"], world["inputs"], world["today"]
    (inputs / "inventory.csv").write_text(INVENTORY)
    (inputs / "contracts.json").write_text(json.dumps(CONTRACTS, indent=1))
    (inputs / "history.csv").write_text(history_csv(today))
    book.on_futures_exposure.remote(0, -2000.0)
    book.on_futures_exposure.remote(1, -500.0)
    spot_today = [
        {"kind": "spot", "commodity": "rb", "date": today.isoformat(), "price": 3100},
        {"kind": "inventory", "commodity": "rb", "id": "bad", "quantity": "lots"},
    ]

    def ready() -> bool:
        publish(world["pub"], spot_today)  # PUB drops until the book's SUB is connected
        f = ray.get(book.exposure.remote())
        return (
            f["spot_price"] == 3100
            and f["sale_units"] == 1500
            and f["futures_price"] == 3000
            and f["var_obs"] > 0
        )

    assert wait_until(ready, 15, interval=0.2)
    f = ray.get(book.exposure.remote())
    assert (f["inventory_units"], f["purchase_units"], f["sale_units"]) == (4000, 2000, 1500)
    assert f["futures_units"] == -2500 and f["net_units"] == 4000 + 2000 - 1500 - 2500
    assert f["net_value"] == 2000 * 3100 and f["main_contract"] == "rb2601"
    assert f["basis"] == 3100 - 3000 and f["hedge_ratio"] == pytest.approx(2500 / 4500)
    assert f["by_unit"]["east"]["net_units"] == 5000 and f["by_unit"]["north"]["net_units"] == -500
    assert f["var_method"] == "spot+futures" and f["var_obs"] == 59
    assert f["var_95"] == historical_var(list(f["var_pnl"].values()), 0.95) > 0
    assert f["param_var_99"] > f["param_var_95"] > 0

    quarantine = ray.get(book.stats.remote())["quarantine"]
    assert f"{inputs / 'inventory.csv'}:3: quantity is 'NaN': NaN or infinite" in quarantine
    assert f"{inputs / 'inventory.csv'}:5: no exposure book for commodity 'zz'" in quarantine
    assert any(":2: quantity 'lots' is not a number" in q for q in quarantine)  # from ZeroMQ
    assert not any("cu" in q for q in quarantine)  # cu rows are the cu book's business


def test_limits_contract_and_counterparty_risk_become_operating_alerts(world):
    corr = world["corr"]

    def alerts() -> dict[tuple[str, str], dict]:
        return {(a["rule_id"], a["key"]): a for a in ray.get(corr.alerts.remote(1000))}

    wanted = {
        ("rb.net", "rb"),
        ("operating.contract_price", "S1"),
        ("operating.counterparty_limit", "Steel Co@rb"),
        ("operating.input_rejected", "inventory.csv@rb"),
    }
    assert wait_until(lambda: wanted <= set(alerts()), 10)
    got = alerts()
    assert ("unit.value", "rb/east") not in got  # 5,000 × 3,100 is under 20 million
    assert all(a["dimension"] == "operating" for a in got.values())
    s1 = got[("operating.contract_price", "S1")]
    assert s1["value"] == pytest.approx(3400 / 3100 - 1)
    assert s1["attributes"]["counterparty_gains_by_default"] is True  # buyer pays over market
    assert got[("operating.counterparty_limit", "Steel Co@rb")]["value"] == 2000 * 3100
    assert got[("rb.net", "rb")]["value"] > 1500  # whichever input arrived first crossed it


def test_daily_report_from_the_journal(world, capsys):
    book, audit, tmp, today = world["book"], world["audit"], world["tmp"], world["today"]
    assert wait_until(lambda: ray.get(book.stats.remote()).get("snapshots", 0) >= 2, 10)
    ray.get(book.snapshot.remote())
    ray.get(audit.flush.remote())
    out = tmp / "reports"
    journal = str(tmp / "journal.sqlite")
    code = cli.main(
        ["report", "operating", "--date", today.strftime("%Y%m%d"), "--journal", journal,
         "--out", str(out)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr()
    html = (out / f"operating_{today.isoformat()}.html").read_text()
    report = json.loads((out / f"operating_{today.isoformat()}.json").read_text())
    assert "<h2>rb</h2>" in html and html.count("<svg") == 1 and "<polyline" in html
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    [rb] = report["books"]
    assert rb["figures"]["net_units"] == 2000 and rb["figures"]["basis"] == 100
    assert len(rb["series"]) >= 3
    assert report["total"]["net_value"] == 2000 * 3100
    assert report["total"]["by_unit"]["east"] == 5000 * 3100
    assert report["total"]["var_95"] == pytest.approx(rb["figures"]["var_95"])
