"""The edges `fengkong run` starts as placed actors: the account bus, the simulated order
gateway, the simulated market (exchange + account population) and the tick-file replay.

Each one binds on its own node (`infra.cluster.bind_host`: the node's IP or a configured
interface), keeps only the *port* of the endpoint the config names, and answers `endpoints()`
with what it actually bound, keyed like the config (`accounts.endpoint`, `orders.endpoint`,
`market.feeds.<name>`). The supervisor (app.system_actor) wires the rest of the system with
those, and notices when a restarted edge came back on another node with another address.
Calls stay quick; the sockets run on the gateways' own threads.
"""

from __future__ import annotations

from typing import Any

import ray

from actors.common import ACTOR_OPTIONS
from infra.cluster import bind_host, port_of

EDGE_OPTIONS: dict[str, Any] = {**ACTOR_OPTIONS, "max_task_retries": 0}


def _at(host: str, endpoint: str) -> str:
    return f"tcp://{host}:{port_of(endpoint)}"


@ray.remote(**EDGE_OPTIONS)
class AccountBusEdge:
    """The account bus (gateways.accounts.bus) on this node: PULL in, PUB out, ROUTER snapshots.
    Its log is in memory: a bus restarted elsewhere starts empty and the sources republish."""

    def __init__(self, endpoints: dict[str, str], bind: str = "") -> None:
        from gateways.accounts.bus import AccountBus

        host = bind_host(bind)
        self._endpoints = {k: _at(host, v) for k, v in endpoints.items()}
        e = self._endpoints
        self.bus = AccountBus(
            e["accounts.inbound_endpoint"], e["accounts.endpoint"], e["accounts.snapshot_endpoint"]
        ).start()

    def endpoints(self) -> dict[str, str]:
        return dict(self._endpoints)

    def stats(self) -> dict[str, Any]:
        return dict(self.bus.stats)

    def stop(self) -> None:
        self.bus.stop()


@ray.remote(**EDGE_OPTIONS)
class SimMarketEdge:
    """The simulated exchange (tick frames on the feed's port of this node) and the simulated
    account population, whose snapshots go to the bus's inbound endpoint at start."""

    def __init__(
        self,
        feed: str,
        endpoint: str,
        inbound_endpoint: str,
        sim: Any,
        contracts_overrides: tuple[str, ...] = (),
        margin_markup: float = 0.0,
        bind: str = "",
    ) -> None:
        from gateways.sim.accounts import SimAccountSource
        from gateways.sim.exchange import SimExchange, main_instruments
        from infra.specs import load_contract_table

        table = load_contract_table(contracts_overrides)
        instruments = main_instruments(table, sim.contracts)
        self.commodities = sorted({table.spec(i).commodity for i in instruments})
        self._endpoints = {f"market.feeds.{feed}": _at(bind_host(bind), endpoint)}
        self.exchange = SimExchange(
            self._endpoints[f"market.feeds.{feed}"], instruments, table,
            ticks_per_contract_hz=sim.ticks_per_contract_hz, seed=sim.seed,
        )  # fmt: skip
        self.exchange.start()
        self.accounts = SimAccountSource(
            inbound_endpoint, instruments, table, self.exchange.prices(),
            n_accounts=sim.accounts, positions_per_account=sim.positions_per_account,
            seed=sim.seed, margin_markup=margin_markup,
        )  # fmt: skip
        self.published = self.accounts.publish_snapshots()

    def endpoints(self) -> dict[str, str]:
        return dict(self._endpoints)

    def products(self) -> list[str]:
        return sorted(set(self.exchange.products))

    def republish(self) -> int:
        """Send every account's snapshot again (the supervisor asks when the bus came back
        empty: a bus restarted in place keeps its address but not its log)."""
        self.published = self.accounts.publish_snapshots()
        return self.published

    def shock(self, products: list[str], pct: float, over_s: float = 2.0) -> list[str]:
        """A scripted move (the demo's shock), for drills and the cluster test."""
        return self.exchange.shock(list(products), float(pct), over_s)

    def stats(self) -> dict[str, Any]:
        return {**self.exchange.stats, "accounts_published": self.published}

    def stop(self) -> None:
        for part in (self.accounts, self.exchange):
            try:
                part.stop()
            except Exception:  # best effort: the actor is being killed next
                pass


@ray.remote(**EDGE_OPTIONS)
class ReplayEdge:
    """Tick CSVs replayed as tick frames on the feed's port of this node (`[cluster] market =
    "replay"`); the files must be readable on the node (the image or the working_dir)."""

    def __init__(self, feed: str, endpoint: str, files: tuple[str, ...], bind: str = "") -> None:
        from pathlib import Path

        from gateways.market.replay import CsvReplayPublisher

        self._endpoints = {f"market.feeds.{feed}": _at(bind_host(bind), endpoint)}
        ep = self._endpoints[f"market.feeds.{feed}"]
        self.replay = CsvReplayPublisher(ep, [Path(f) for f in files]).start()

    def endpoints(self) -> dict[str, str]:
        return dict(self._endpoints)

    def stats(self) -> dict[str, Any]:
        return dict(self.replay.stats)

    def stop(self) -> None:
        self.replay.stop()


@ray.remote(**EDGE_OPTIONS)
class OrderGatewayEdge:
    """The simulated exchange's order gateway (gateways.sim.order_gateway) on this node: the
    Executor's orders in, reports out, fills to the account bus as trades."""

    def __init__(
        self,
        order_endpoint: str,
        reports_endpoint: str,
        market_endpoints: list[str],
        inbound_endpoint: str,
        contracts_overrides: tuple[str, ...] = (),
        seed: int = 7,
        bind: str = "",
    ) -> None:
        from gateways.sim.order_gateway import SimOrderGateway
        from infra.specs import load_contract_table

        host = bind_host(bind)
        self._endpoints = {
            "orders.endpoint": _at(host, order_endpoint),
            "orders.reports_endpoint": _at(host, reports_endpoint),
        }
        self.gateway = SimOrderGateway(
            self._endpoints["orders.endpoint"], self._endpoints["orders.reports_endpoint"],
            list(market_endpoints), inbound_endpoint, load_contract_table(contracts_overrides),
            seed=seed,
        )  # fmt: skip
        self.gateway.start()

    def endpoints(self) -> dict[str, str]:
        return dict(self._endpoints)

    def stats(self) -> dict[str, Any]:
        return dict(self.gateway.stats)

    def stop(self) -> None:
        self.gateway.stop()
