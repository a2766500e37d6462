"""Operating exposure of one commodity: futures, spot inventory and physical contracts.

    exposure (physical units) = net futures units + inventory + purchase contracts − sales contracts
    basis                     = spot − main futures price
    hedge ratio               = − futures units / physical units   (1 = fully hedged)

Money figures mark the net exposure at the spot price (the main futures price when there is no
spot price yet); the futures leg alone is marked at the futures price. Records are keyed by id
and replace each other, so a file read twice, or a ZeroMQ message repeated, counts once: an
inventory record with quantity 0 or a contract with status "delivered" / "cancelled" removes it.

Pure: stdlib and numpy only. Parsing validates plain mappings (a CSV row, a JSON object); the
file and line of a bad one are the caller's to add.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from rules.sessions import parse_day
from rules.var import pnl_scenarios, returns, var_figures

KINDS = ("inventory", "contract", "spot", "futures_close")
LIMIT_METRICS = (
    "net_units", "abs_net_units", "net_value", "abs_net_value", "hedge_ratio", "basis",
    "abs_basis_change", "var_95", "var_99", "param_var_95", "param_var_99",
)  # fmt: skip
UNIT_METRICS = ("net_units", "abs_net_units", "net_value", "abs_net_value")
LIMIT_SCOPES = ("commodity", "business_unit")
SIDES = {"purchase": 1, "buy": 1, "采购": 1, "sale": -1, "sell": -1, "销售": -1}
CLOSED = ("delivered", "cancelled", "canceled", "closed")
UNASSIGNED = "(futures, not by unit)"


class InputError(ValueError):
    """A record that cannot be used; the message is the reason."""


@dataclass(frozen=True, slots=True)
class Inventory:
    id: str
    commodity: str
    quantity: float
    business_unit: str = "default"
    location: str = ""
    valuation_price: float = float("nan")


@dataclass(frozen=True, slots=True)
class PhysicalContract:
    id: str
    commodity: str
    side: int  # +1 purchase, -1 sale
    quantity: float  # still to be delivered
    price: float
    delivery_date: date
    counterparty: str
    business_unit: str = "default"
    status: str = "open"


@dataclass(frozen=True, slots=True)
class PricePoint:
    kind: str  # "spot" or "futures_close"
    commodity: str
    day: date
    price: float
    location: str = ""


Record = Inventory | PhysicalContract | PricePoint


def _text(raw: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key)
    if value is None or str(value).strip() == "":
        if default is None:
            raise InputError(f"missing {key}")
        return default
    return str(value).strip()


def _number(raw: Mapping[str, Any], key: str, *, positive: bool, default: float | None = None):
    value = raw.get(key)
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if default is None:
            raise InputError(f"missing {key}")
        return default
    if isinstance(value, bool):
        raise InputError(f"{key} {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{key} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise InputError(f"{key} is {value!r}: NaN or infinite")
    if positive and number <= 0:
        raise InputError(f"{key} must be positive, got {value!r}")
    if not positive and number < 0:
        raise InputError(f"{key} must not be negative, got {value!r}")
    return number


def _day(raw: Mapping[str, Any], key: str) -> date:
    try:
        return parse_day(_text(raw, key))
    except ValueError as exc:
        raise InputError(f"{key}: {exc}") from None


def parse_record(kind: str, raw: Mapping[str, Any]) -> Record:
    """Validate one input record of `kind`; raises InputError with the reason."""
    if kind not in KINDS:
        raise InputError(f"unknown record kind {kind!r}; one of {', '.join(KINDS)}")
    commodity = _text(raw, "commodity")
    if kind == "inventory":
        return Inventory(
            id=_text(raw, "id"),
            commodity=commodity,
            quantity=_number(raw, "quantity", positive=False),
            business_unit=_text(raw, "business_unit", "default"),
            location=_text(raw, "location", ""),
            valuation_price=_number(raw, "valuation_price", positive=True, default=float("nan")),
        )
    if kind == "contract":
        side_text = _text(raw, "side").lower()
        if side_text not in SIDES:
            raise InputError(f"side {side_text!r} must be purchase or sale")
        status = _text(raw, "status", "open").lower()
        if status not in ("open", *CLOSED):
            raise InputError(f"status {status!r} must be open, delivered or cancelled")
        return PhysicalContract(
            id=_text(raw, "id"),
            commodity=commodity,
            side=SIDES[side_text],
            quantity=_number(raw, "quantity", positive=False),
            price=_number(raw, "price", positive=True),
            delivery_date=_day(raw, "delivery_date"),
            counterparty=_text(raw, "counterparty"),
            business_unit=_text(raw, "business_unit", "default"),
            status=status,
        )
    return PricePoint(
        kind=kind,
        commodity=commodity,
        day=_day(raw, "date"),
        price=_number(raw, "price", positive=True),
        location=_text(raw, "location", ""),
    )


def record_to_dict(record: Record) -> dict[str, Any]:
    """Plain form for the wire and the journal (dates as ISO text, side as purchase/sale)."""
    out = asdict(record)
    for key in ("day", "delivery_date"):
        if key in out:
            out["date" if key == "day" else key] = out.pop(key).isoformat()
    if isinstance(record, PhysicalContract):
        out["side"] = "purchase" if record.side > 0 else "sale"
        out["kind"] = "contract"
    elif isinstance(record, Inventory):
        out["kind"] = "inventory"
    return out


class OperatingBook:
    """Records and figures of one commodity's book (the ExposureBook actor holds one)."""

    def __init__(self, commodity: str) -> None:
        self.commodity = commodity
        self.inventory: dict[str, Inventory] = {}
        self.contracts: dict[str, PhysicalContract] = {}
        self.spot_points: dict[tuple[date, str], float] = {}
        self.futures_close: dict[date, float] = {}
        self.futures_units_by_shard: dict[int, float] = {}
        self.futures_by_unit: dict[int, dict[str, float]] = {}

    def apply(self, records: Iterable[Record]) -> int:
        n = 0
        for rec in records:
            n += 1
            if isinstance(rec, Inventory):
                if rec.quantity == 0:
                    self.inventory.pop(rec.id, None)
                else:
                    self.inventory[rec.id] = rec
            elif isinstance(rec, PhysicalContract):
                if rec.status != "open" or rec.quantity == 0:
                    self.contracts.pop(rec.id, None)
                else:
                    self.contracts[rec.id] = rec
            elif rec.kind == "spot":
                self.spot_points[(rec.day, rec.location)] = rec.price
            else:
                self.futures_close[rec.day] = rec.price
        return n

    def spot_series(self) -> dict[date, float]:
        """Daily spot price: the mean over the locations quoted that day."""
        by_day: dict[date, list[float]] = {}
        for (day, _loc), price in self.spot_points.items():
            by_day.setdefault(day, []).append(price)
        return {d: sum(v) / len(v) for d, v in sorted(by_day.items())}

    def figures(
        self, futures_price: float, today: date, var_window: int = 250, var_min_obs: int = 20
    ) -> dict[str, Any]:
        """Exposure in units and money (total and per business unit), basis, hedge ratio, VaR."""
        nan = float("nan")
        futures_units = sum(self.futures_units_by_shard.values())
        spot = self.spot_series()
        spot_day = max(spot) if spot else None
        spot_now = spot[spot_day] if spot_day else nan
        fut_now = futures_price if futures_price and math.isfinite(futures_price) else nan
        mark = spot_now if math.isfinite(spot_now) else fut_now

        units: dict[str, dict[str, float]] = {}

        def unit(name: str) -> dict[str, float]:
            return units.setdefault(
                name, {"inventory": 0.0, "purchases": 0.0, "sales": 0.0, "futures": 0.0}
            )

        for inv in self.inventory.values():
            unit(inv.business_unit)["inventory"] += inv.quantity
        for c in self.contracts.values():
            unit(c.business_unit)["purchases" if c.side > 0 else "sales"] += c.quantity
        by_unit_futures: dict[str, float] = {}
        for per_shard in self.futures_by_unit.values():
            for name, value in per_shard.items():
                by_unit_futures[name] = by_unit_futures.get(name, 0.0) + value
        assigned = sum(by_unit_futures.values())
        for name, value in by_unit_futures.items():
            unit(name)["futures"] += value
        if abs(futures_units - assigned) > 1e-9:
            unit(UNASSIGNED)["futures"] += futures_units - assigned
        for row in units.values():
            row["physical"] = row["inventory"] + row["purchases"] - row["sales"]
            row["net_units"] = row["physical"] + row["futures"]
            row["net_value"] = row["net_units"] * mark
        inventory = sum(r["inventory"] for r in units.values())
        purchases = sum(r["purchases"] for r in units.values())
        sales = sum(r["sales"] for r in units.values())
        physical = inventory + purchases - sales
        net = physical + futures_units

        basis = spot_now - fut_now
        basis_change = nan
        if spot_day is not None and math.isfinite(basis):
            earlier = [d for d in spot if d < spot_day and d in self.futures_close]
            if earlier:
                d = max(earlier)
                basis_change = basis - (spot[d] - self.futures_close[d])

        fut_leg = futures_units * (fut_now if math.isfinite(fut_now) else mark)
        phys_leg = physical * mark
        var, method = self._var(spot, phys_leg, fut_leg, today, var_window, var_min_obs)
        return {
            "commodity": self.commodity,
            "futures_units": futures_units,
            "inventory_units": inventory,
            "purchase_units": purchases,
            "sale_units": sales,
            "physical_units": physical,
            "net_units": net,
            "spot_price": spot_now,
            "spot_date": spot_day.isoformat() if spot_day else None,
            "futures_price": fut_now,
            "mark_price": mark,
            "net_value": net * mark,
            "futures_value": fut_leg,
            "physical_value": phys_leg,
            "hedge_ratio": -futures_units / physical if physical else nan,
            "basis": basis,
            "basis_change": basis_change,
            "by_unit": units,
            "var_method": method,
            "var_pnl": {d.isoformat(): v for d, v in var.items()},
            **var_figures(var, var_min_obs),
        }

    def _var(
        self,
        spot: dict[date, float],
        phys_leg: float,
        fut_leg: float,
        today: date,
        window: int,
        min_obs: int,
    ) -> tuple[dict[date, float], str]:
        """Scenario P&L of the book: completed days only (today's price is not a close yet)."""
        spot_r = returns({d: p for d, p in spot.items() if d < today})
        fut_r = returns({d: p for d, p in self.futures_close.items() if d < today})
        both = len(set(spot_r) & set(fut_r)) >= min_obs
        if both and math.isfinite(phys_leg) and math.isfinite(fut_leg):
            return pnl_scenarios([phys_leg, fut_leg], [spot_r, fut_r], window), "spot+futures"
        # One price history only: both legs move with it (basis risk is not measured then).
        total = sum(v for v in (phys_leg, fut_leg) if math.isfinite(v))
        if len(fut_r) >= min_obs:
            return pnl_scenarios([total], [fut_r], window), "futures only (no spot history)"
        if len(spot_r) >= min_obs:
            return pnl_scenarios([total], [spot_r], window), "spot only (no futures history)"
        return {}, "insufficient history"

    def market_price(self, futures_price: float) -> float:
        spot = self.spot_series()
        if spot:
            return spot[max(spot)]
        return futures_price

    def off_market(self, market: float, tolerance: float) -> list[tuple[PhysicalContract, float]]:
        """Open contracts priced further than `tolerance` (fraction) from the market price."""
        if not (market and math.isfinite(market)):
            return []
        out = []
        for c in sorted(self.contracts.values(), key=lambda c: c.id):
            deviation = (c.price - market) / market
            out.append((c, deviation))
        return [(c, d) for c, d in out if abs(d) > tolerance]

    def counterparty_exposure(self, market: float) -> dict[str, float]:
        """Notional of open contracts per counterparty, at the market price."""
        out: dict[str, float] = {}
        if not (market and math.isfinite(market)):
            return out
        for c in self.contracts.values():
            out[c.counterparty] = out.get(c.counterparty, 0.0) + c.quantity * market
        return out


class Latches:
    """Fire-once-then-re-arm state for the few keys of a book (contracts, counterparties)."""

    def __init__(self) -> None:
        self.armed: dict[Any, bool] = {}
        self.episode: dict[Any, int] = {}

    def step(self, key: Any, breached: bool, cleared: bool) -> int | None:
        """The new episode number when `key` fires now, else None."""
        if self.armed.get(key, True):
            if breached:
                self.armed[key] = False
                self.episode[key] = self.episode.get(key, 0) + 1
                return self.episode[key]
        elif cleared:
            self.armed[key] = True
        return None


def limit_values(figures: Mapping[str, Any], metric: str, scope: str) -> dict[str, float]:
    """Values of a limit metric by key: the commodity, or "<commodity>/<unit>" per unit."""

    def pick(source: Mapping[str, Any]) -> float:
        if metric.startswith("abs_"):
            base = metric[4:]
            value = source.get(base, float("nan"))
            return abs(value) if value is not None else float("nan")
        value = source.get(metric, float("nan"))
        return float(value) if value is not None else float("nan")

    commodity = figures["commodity"]
    if scope == "commodity":
        return {commodity: pick(figures)}
    if metric not in UNIT_METRICS:
        return {}
    return {f"{commodity}/{name}": pick(row) for name, row in figures["by_unit"].items()}
