"""ExposureBook actor: operating exposure of one commodity.

Inputs: net futures exposure from every account shard (in physical units, per shard, replaced
on each report so a restarted shard cannot double count); prices from the feeds (the main
contract is the configured one, else the most held); spot inventory, purchase and sales
contracts and spot prices from files in the watched folder and from the book's ZeroMQ topic
(gateways.books). Every book scans the whole folder and keeps its own commodity's rows: records
replace each other by id, so a restarted book rebuilds its state by reading the folder again.
Rows that belong to no book are reported by the one book started with `report_unrouted`.

Every `eval_s` a changed book recomputes its figures (rules.exposure, rules.var) and evaluates
its exposure limits, contract prices against the market and counterparty exposure; what
crosses becomes a RiskEvent (dimension "operating") sent to the Correlator in one call. Every
`snapshot_s` the figures are journaled as an `operating_snapshot`, which the daily operating
report (`fengkong report operating`) reads.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import ray

from actors.common import ACTOR_OPTIONS, entry
from actors.context import Context
from actors.rule_host import bundle_of, start_ruleset
from actors.shell import ActorShell
from gateways.books.files import FolderWatcher, Reject, parse_rows, read_file
from gateways.books.topic import BookTopicSubscriber
from infra.config import BooksConfig
from infra.config.legacy import book_limit_spec
from rules.contracts import product_of
from rules.engine.book_limits import BookLimits
from rules.engine.kinds.session import SessionGate
from rules.engine.spec import RuleSet
from rules.exposure import Latches, OperatingBook, Record
from rules.model import PriceUpdate, RiskEvent

QUARANTINE_SIZE = 500
SNAPSHOT_TIMEOUT_S = 30.0  # an operator's snapshot waits this long for the journal to take it


@dataclass(frozen=True)
class ExposureBookSettings:
    commodity: str
    products: tuple[str, ...]  # the products whose prices and rows are this book's
    books: BooksConfig = BooksConfig()  # limits, inputs, cadences (config `[books]`)
    all_commodities: tuple[str, ...] = ()  # every book's commodity, to tell rows of no book
    report_unrouted: bool = False  # this book reports input rows that belong to no book


@ray.remote(**ACTOR_OPTIONS)
class ExposureBook(ActorShell):
    def __init__(
        self,
        settings: ExposureBookSettings,
        *,
        context: Context | None = None,
        correlator: Any = None,
        audit: Any = None,
        rules: dict[str, Any] | None = None,
    ) -> None:
        commodity = settings.commodity
        super().__init__(f"ExposureBook.{commodity}", context, QUARANTINE_SIZE)
        self.settings = settings
        self.config = settings.books
        self.commodity = commodity
        self.products = set(settings.products)
        self.correlator = correlator
        self.audit = audit
        self.all_commodities = set(settings.all_commodities) | {commodity}
        self.report_unrouted = settings.report_unrouted
        self.calendar = self.context.calendar
        self.book = OperatingBook(commodity)
        self.prices: dict[str, tuple[float, float]] = {}  # instrument -> (last, open interest)
        self._mine: dict[str, bool] = {}  # instrument -> one of this book's products?
        self.main_override = self.config.main_contracts.get(commodity, "")
        # Book limits (rules.engine.book_limits): the book rules of the rule-set bundle every
        # actor is given (the journal's latest after a restart), or without one those of the
        # settings' deprecated `limits`.
        if rules is not None:
            ruleset, rule_context = start_ruleset(rules, audit)
        else:
            ruleset = RuleSet(tuple(book_limit_spec(lim) for lim in self.config.limits))
            rule_context = {}
        shift = float(rule_context.get("clock_shift_s", 0.0))
        self.limits = BookLimits(commodity, SessionGate(self.calendar, shift))
        self.limits.replace(ruleset.everything)
        self.latches = Latches()
        self.figures_now: dict[str, Any] = {}
        self.updated_ts = 0.0
        self._dirty_since: float | None = time.time()
        self._last_snapshot = 0.0
        self._lock = threading.RLock()
        self._topic: BookTopicSubscriber | None = None
        if self.config.inputs_dir:
            self._watcher = FolderWatcher(self.config.inputs_dir)
            self.every(self.config.scan_s, self._scan, "scan")
        if self.config.inputs_endpoint:
            self._topic = BookTopicSubscriber(
                self.config.inputs_endpoint, [commodity], self._on_topic
            ).start()
        self.every(self.config.eval_s, self.evaluate, "eval")

    # ---- inputs ---------------------------------------------------------------------------

    def on_futures_exposure(self, shard: int, units: float) -> None:
        with self._lock:
            self.book.futures_units_by_shard[shard] = float(units)
            self._touch()

    def on_futures_exposure_by_unit(self, shard: int, units: dict[str, float]) -> None:
        """Futures units of one shard per business unit (the rest stays unassigned)."""
        with self._lock:
            self.book.futures_by_unit[shard] = {k: float(v) for k, v in units.items()}
            self._touch()

    def on_prices(self, update: PriceUpdate) -> None:
        oi = update.open_interest
        with self._lock:
            for i, name in enumerate(update.instruments):
                mine = self._mine.get(name)
                if mine is None:
                    try:
                        mine = self._mine[name] = product_of(name) in self.products
                    except ValueError:
                        mine = self._mine[name] = False
                if mine:
                    held = float(oi[i]) if oi is not None else float("nan")
                    self.prices[name] = (float(update.last[i]), held)
                    self._touch()

    def on_inputs(self, records: list[dict[str, Any]], source: str = "api") -> dict[str, Any]:
        """Records sent by a caller (same fields as the files); returns accepted and rejects."""
        parsed = parse_rows(source, list(enumerate(records, start=1)), None)
        accepted = self._take(parsed.records, parsed.rejects, source)
        return {"accepted": accepted, "rejected": [str(r) for r in parsed.rejects]}

    def _on_topic(
        self, source: str, records: list[tuple[int | None, Record]], rejects: list[Reject]
    ) -> None:
        mine = []
        for line, rec in records:
            if rec.commodity == self.commodity:
                mine.append((line, rec))
            else:
                why = f"commodity {rec.commodity!r} sent on the topic of {self.commodity!r}"
                rejects.append(Reject(source, line, why, self.commodity))
        self._take(mine, rejects, source)  # all of it was sent on this book's topic

    def _scan(self) -> None:
        for path in self._watcher.changed():
            self._read(path)

    def _read(self, path: Path) -> None:
        parsed = read_file(path)
        self.counts["files_read"] += 1
        mine: list[tuple[int | None, Record]] = []
        rejects = [
            r for r in parsed.rejects
            if r.commodity == self.commodity
            or (self.report_unrouted and r.commodity not in self.all_commodities)
        ]  # fmt: skip
        for line, rec in parsed.records:
            if rec.commodity == self.commodity:
                mine.append((line, rec))
            elif self.report_unrouted and rec.commodity not in self.all_commodities:
                rejects.append(
                    Reject(parsed.source, line,
                           f"no exposure book for commodity {rec.commodity!r}", rec.commodity)
                )  # fmt: skip
        self._take(mine, rejects, parsed.source)

    def _take(
        self, records: list[tuple[int | None, Record]], rejects: list[Reject], source: str
    ) -> int:
        events = []
        with self._lock:
            self.book.apply(rec for _line, rec in records)
            self.counts["records"] += len(records)
            if records:
                self._touch()
            if rejects:
                self.counts["rejected"] += len(rejects)
                for r in rejects:
                    self.reject(str(r))
                key = f"{Path(source).name}@{self.commodity}"
                episode = self.counts[f"rejects:{key}"] = self.counts[f"rejects:{key}"] + 1
                events.append(
                    self._event("operating.input_rejected", "operating.input_rejected", key,
                                "warning", len(rejects), 0.0, episode, time.time(),
                                {"source": source, "rejects": [str(r) for r in rejects[:10]]})
                )  # fmt: skip
        self._send(events)
        return len(records)

    def _touch(self) -> None:
        self.updated_ts = time.time()
        if self._dirty_since is None:
            self._dirty_since = self.updated_ts

    # ---- evaluation -----------------------------------------------------------------------

    def main_contract(self) -> tuple[str, float]:
        """(instrument, price) of the main contract: configured, else the most held."""
        if self.main_override and self.main_override in self.prices:
            return self.main_override, self.prices[self.main_override][0]
        if not self.prices:
            return "", float("nan")
        name = max(self.prices, key=lambda n: (np.nan_to_num(self.prices[n][1], nan=-1.0), n))
        return name, self.prices[name][0]

    def evaluate(self, force: bool = False) -> dict[str, Any]:
        """Recompute the figures when something changed, raise events, journal snapshots."""
        now = time.time()
        with self._lock:
            if self._dirty_since is None and not force and self.figures_now:
                self._maybe_snapshot(now)
                return self.figures_now
            ingress = self._dirty_since or now
            self._dirty_since = None
            day = self.calendar.trading_day(now)
            main, price = self.main_contract()
            if main and math.isfinite(price):
                self.book.futures_close[day] = price  # today's close so far
            figures = self.book.figures(price, day, self.config.var_window, self.config.var_min_obs)
            figures.update(main_contract=main, trading_day=day.isoformat(), ts=now)
            self.figures_now = figures
            events = self._limit_events(figures, ingress) + self._contract_events(price, ingress)
            self.counts["evaluations"] += 1
            self._maybe_snapshot(now)
        self._send(events)
        return figures

    def _limit_events(self, figures: dict[str, Any], ingress: float) -> list[RiskEvent]:
        attrs = {k: figures[k] for k in ("net_units", "net_value", "mark_price")}
        attrs["commodity"] = self.commodity
        return [
            self._event(h.spec.id, f"operating.{h.spec.metric}", h.key, h.spec.severity, h.value,
                        h.spec.threshold, h.episode, ingress,
                        {**attrs, "scope": h.scope, "description": h.spec.description})
            for h in self.limits.evaluate(figures, time.time())
        ]  # fmt: skip

    def _contract_events(self, futures_price: float, ingress: float) -> list[RiskEvent]:
        """Contract-performance risk: prices away from the market, counterparty exposure."""
        events = []
        market = self.book.market_price(futures_price)
        tol = self.config.price_tolerance
        off = {c.id: (c, d) for c, d in self.book.off_market(market, tol)}
        for cid, contract in sorted(self.book.contracts.items()):
            dev = (contract.price - market) / market if market == market and market else 0.0
            episode = self.latches.step(("price", cid), cid in off, abs(dev) < 0.8 * tol)
            if episode is None:
                continue
            # Who gains by walking away: a seller when the market is above our purchase price,
            # a buyer when it is below our sale price.
            incentive = (contract.side > 0 and market > contract.price) or (
                contract.side < 0 and market < contract.price
            )
            attrs = {
                "commodity": self.commodity, "counterparty": contract.counterparty,
                "side": "purchase" if contract.side > 0 else "sale", "price": contract.price,
                "market": market, "quantity": contract.quantity,
                "delivery_date": contract.delivery_date.isoformat(),
                "counterparty_gains_by_default": bool(incentive),
            }  # fmt: skip
            events.append(
                self._event("operating.contract_price", "operating.contract_off_market", cid,
                            "warning", dev, tol, episode, ingress, attrs)
            )  # fmt: skip
        limits = self.config.counterparty_limits
        for cp, notional in sorted(self.book.counterparty_exposure(market).items()):
            limit = float(limits.get(cp, self.config.default_counterparty_limit))
            if limit <= 0:
                continue
            key = f"{cp}@{self.commodity}"
            episode = self.latches.step(("cp", key), notional > limit, notional < 0.9 * limit)
            if episode is not None:
                attrs = {"commodity": self.commodity, "counterparty": cp, "market": market}
                events.append(
                    self._event("operating.counterparty_limit", "operating.counterparty_exposure",
                                key, "warning", notional, limit, episode, ingress, attrs)
                )  # fmt: skip
        return events

    def _event(
        self, rule_id: str, kind: str, key: str, severity: str, value: float,
        threshold: float, episode: int, ingress: float, attrs: dict[str, Any],
    ) -> RiskEvent:  # fmt: skip
        return RiskEvent(
            rule_id=rule_id, kind=kind, key=key, severity=severity, value=float(value),
            threshold=float(threshold), ts=time.time(), ingress_ts=ingress, episode=episode,
            dimension="operating", attributes=attrs,
        )  # fmt: skip

    def _send(self, events: list[RiskEvent]) -> None:
        if not events:
            return
        self.counts["events"] += len(events)
        if self.correlator is not None:
            self.correlator.on_events.remote(events)

    def _maybe_snapshot(self, now: float) -> None:
        if self.audit is None or now - self._last_snapshot < self.config.snapshot_s:
            return
        self._write_snapshot(now)

    def _write_snapshot(self, now: float) -> Any:
        """Hands the snapshot record to the journal; returns the call's ref (None: nothing)."""
        figures = self.figures_now
        if not figures or self.audit is None:
            return None
        self._last_snapshot = now
        actor = f"ExposureBook.{self.commodity}"
        day = figures["trading_day"]
        ref = self.audit.append.remote(
            [entry("operating_snapshot", actor, self.commodity, day, figures, ts=now)]
        )
        self.counts["snapshots"] += 1
        return ref

    # ---- queries --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Recompute now and journal the figures (reports, operators); returns them."""
        figures = self.evaluate(force=True)
        with self._lock:
            ref = self._write_snapshot(time.time())
        if ref is not None:  # journaled when it returns: a report asked for next includes it
            ray.get(ref, timeout=SNAPSHOT_TIMEOUT_S)
        return figures

    def exposure(self) -> dict[str, Any]:
        figures = self.evaluate()
        main, price = self.main_contract()
        return {
            **figures,
            "price": price,
            "price_instrument": main,
            "exposure_value": figures["futures_units"] * price if price == price else None,
            "shards_reporting": len(self.book.futures_units_by_shard),
            "updated_ts": self.updated_ts,
        }

    def figures(self) -> dict[str, Any]:
        return {
            "commodity": self.commodity,
            "inventory": len(self.book.inventory),
            "contracts": len(self.book.contracts),
            "spot_points": len(self.book.spot_points),
            "topic_frames": self._topic.frames if self._topic else 0,
            "quarantine": self.reasons(20),
        }

    def stats(self) -> dict[str, Any]:
        shown = super().stats()
        return {k: v for k, v in shown.items() if not k.startswith("rejects:")}

    def set_rules(self, bundle: dict[str, Any]) -> dict[str, Any]:
        """Hot reload: the book rules of a rule-set bundle replace the book's; rules that did
        not change keep their arming state per key."""
        with self._lock:
            report = self.limits.replace(bundle_of(bundle).everything)
            self._touch()  # evaluate the new limits at the next round
        return {"actor": f"ExposureBook.{self.commodity}", "limits": self.limits.ids,
                **report}  # fmt: skip

    def stop(self) -> None:
        super().stop()
        if self._topic is not None:
            self._topic.stop()
