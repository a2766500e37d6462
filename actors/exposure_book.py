"""ExposureBook actor: operating exposure of one commodity.

Net futures exposure arrives from every account shard (in physical units, per shard, replaced on
each report so a restart of a shard cannot double count); the latest price arrives from the
feeds. Exposure in money = units × price of the commodity's most recently priced contract.
"""

from __future__ import annotations

import time
from typing import Any

import ray

from actors.common import ACTOR_OPTIONS
from rules.contracts import product_of
from rules.model import PriceUpdate


@ray.remote(**ACTOR_OPTIONS)
class ExposureBook:
    def __init__(self, commodity: str, products: list[str]) -> None:
        self.commodity = commodity
        self.products = set(products)
        self.futures_units_by_shard: dict[int, float] = {}
        self.price = float("nan")
        self.price_instrument = ""
        self.updated_ts = 0.0

    def on_futures_exposure(self, shard: int, units: float) -> None:
        self.futures_units_by_shard[shard] = float(units)
        self.updated_ts = time.time()

    def on_prices(self, update: PriceUpdate) -> None:
        for i, name in enumerate(update.instruments):
            try:
                product = product_of(name)
            except ValueError:
                continue
            if product in self.products:
                self.price = float(update.last[i])
                self.price_instrument = name

    def exposure(self) -> dict[str, Any]:
        units = sum(self.futures_units_by_shard.values())
        return {
            "commodity": self.commodity,
            "futures_units": units,
            "price": self.price,
            "price_instrument": self.price_instrument,
            "exposure_value": units * self.price if self.price == self.price else None,
            "shards_reporting": len(self.futures_units_by_shard),
            "updated_ts": self.updated_ts,
        }
