"""The main job of `make run`: the whole risk loop on a local Ray against simulated counterparts.

Everything outside the actors is simulated but speaks the real protocols: a simulated exchange
publishing tick frames over ZeroMQ, an account population and account bus over ZeroMQ, a
simulated order gateway over ZeroMQ, and a local HTTP sink speaking Twilio's and WeCom's wire
formats. A scripted shock pushes accounts over the risk-degree line; the loop alerts, notifies,
proposes, (optionally) approves as a demo user, executes and journals, with live progress.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import ray
import zmq

from app.cli_output import OperatorError
from app.console.people_cli import login_hint
from app.demo_books import book_var, seed_price_history, var_line
from app.supervisor import System, start_system, stop_system
from gateways.accounts.bus import AccountBus
from gateways.sim.accounts import SimAccountSource
from gateways.sim.exchange import SimExchange, main_instruments
from gateways.sim.order_gateway import SimOrderGateway
from gateways.sim.provider_sink import ProviderSink
from infra.audit import AuditStore
from infra.cluster import dashboard_hint, start_ray
from infra.config import ChannelConfig, Config
from infra.reports.kpi import compute_kpis
from infra.specs import load_contract_table
from rules.display import percent
from rules.engine.alerts import next_trading_day, trading_day

DEMO_PHONE = "+8613800138000"
APPROVAL_EVERY_S = 10.0


def sink_channels(sink_url: str, cfg: Config) -> tuple[ChannelConfig, ...]:
    """Channels that point at the local sink (literal credentials are allowed only on loopback)."""
    return (
        ChannelConfig(
            "wecom-risk-desk",
            "wecom",
            {"base_url": sink_url, "key": cfg.sink.wecom_key, "markdown": True, "timeout": 3.0},
        ),
        ChannelConfig(
            "sms-on-call",
            "twilio_sms",
            {
                "base_url": sink_url,
                "account_sid": cfg.sink.twilio_account_sid,
                "auth_token": cfg.sink.twilio_auth_token,
                "from": "+15005550006",
                "to": [DEMO_PHONE],
                "timeout": 3.0,
            },
        ),
    )


@dataclass
class Simulation:
    """The simulated outside world: exchange, accounts, bus, order gateway, provider sink."""

    sink: ProviderSink | None
    bus: AccountBus
    exchange: SimExchange
    accounts: SimAccountSource
    orders: SimOrderGateway

    def stop(self) -> None:
        for part in (self.accounts, self.orders, self.exchange, self.bus, self.sink):
            if part is not None:
                try:
                    part.stop()
                except Exception:  # stopping is best effort; the process is ending anyway
                    pass


@contextlib.contextmanager
def _binding(key: str, address: str) -> Iterator[None]:
    """A port another process holds becomes one line naming the config key (two demos on one
    machine use the same default ports), not a bare "[Errno 98] Address already in use"."""
    try:
        yield
    except (OSError, zmq.ZMQError) as exc:
        if getattr(exc, "errno", None) != errno.EADDRINUSE:
            raise
        raise OperatorError(
            f"{address}: address already in use ({key}): is another fengkong demo or run "
            "using it? Stop it, or give this one other ports with --config"
        ) from exc


def start_simulation(cfg: Config) -> tuple[Simulation, Config, list[str]]:
    """Start the simulated counterparts; returns them, the config wired to them, the commodities."""
    table = load_contract_table(cfg.contracts_overrides)
    sink = None
    if cfg.sink.enabled:
        sink = ProviderSink(
            port=cfg.sink.port,
            twilio_account_sid=cfg.sink.twilio_account_sid,
            twilio_auth_token=cfg.sink.twilio_auth_token,
            wecom_keys=(cfg.sink.wecom_key,),
        )
        with _binding("sink.port", f"127.0.0.1:{cfg.sink.port}"):
            url = sink.start()
        if not cfg.channels:
            cfg = dataclasses.replace(cfg, channels=sink_channels(url, cfg))
    instruments = main_instruments(table, cfg.sim.contracts)
    bus = AccountBus(
        cfg.accounts.inbound_endpoint,
        cfg.accounts.endpoint,
        cfg.accounts.snapshot_endpoint,
        log_size=cfg.accounts.bus_log_size,
    )
    with _binding("accounts.endpoint / snapshot_endpoint / inbound_endpoint", "account bus"):
        bus.start()
    exchange = SimExchange(
        cfg.market.feeds[0].endpoint,
        instruments,
        table,
        ticks_per_contract_hz=cfg.sim.ticks_per_contract_hz,
        seed=cfg.sim.seed,
        jump_prob=cfg.sim.jump_prob,
        vol_by_margin=True,  # a 2% treasury future must not move like a 10% steel one
        quiet_ticks=True,  # no bounce between two ticks read as volatility before the shock
    )
    with _binding("market.feeds[0].endpoint", cfg.market.feeds[0].endpoint):
        exchange.start()
    accounts = SimAccountSource(
        cfg.accounts.inbound_endpoint,
        instruments,
        table,
        exchange.prices(),
        n_accounts=cfg.sim.accounts,
        positions_per_account=cfg.sim.positions_per_account,
        seed=cfg.sim.seed,
        margin_markup=cfg.accounts.margin_markup,
    )
    orders = SimOrderGateway(
        cfg.orders.endpoint,
        cfg.orders.reports_endpoint,
        [f.endpoint for f in cfg.market.feeds],
        cfg.accounts.inbound_endpoint,
        table,
        seed=cfg.sim.seed,
    )
    with _binding("orders.endpoint / reports_endpoint", "order gateway"):
        orders.start()
    commodities = sorted({table.spec(i).commodity for i in instruments})
    return Simulation(sink, bus, exchange, accounts, orders), cfg, commodities


def roll_day(sim: Simulation, out: TextIO) -> bool:
    """The simulated trading day rolls (`fengkong demo --roll-day-at S`): the exchange settles
    at its last prices and the accounts' source sends the settlement over the account bus."""
    day = trading_day(time.time())
    record = sim.accounts.settle(sim.exchange.settle(), day, next_trading_day(day))
    print(f"*** settlement of {day}: {len(record['prices'])} prices, next day "
          f"{record['next_trading_day']}", file=out)  # fmt: skip
    return True


def gather(system: System) -> dict[str, Any]:
    """One snapshot of the figures the progress line and the summary show."""
    refs = {
        "feeds": [f.stats.remote() for f in system.feeds],
        "shards": [s.stats.remote() for s in system.shards],
        "correlator": system.correlator.stats.remote(),
        "notifier": system.notifier.stats.remote(),
        "executor": system.executor.stats.remote(),
    }
    out: dict[str, Any] = {}
    for key, ref in refs.items():
        out[key] = ray.get(ref, timeout=30)
    return out


def progress_line(
    elapsed: float, figures: dict[str, Any], prev_ticks: int, dt: float
) -> tuple[str, int]:
    ticks = sum(f.get("ticks", 0) for f in figures["feeds"])
    marked = sum(s.get("accounts_marked", 0) for s in figures["shards"])
    accounts = sum(s.get("accounts", 0) for s in figures["shards"])
    corr, notif, exe = figures["correlator"], figures["notifier"], figures["executor"]
    states = exe.get("states", {})
    line = (
        f"t={elapsed:5.1f}s  ticks/s {(ticks - prev_ticks) / max(dt, 1e-9):8,.0f}  "
        f"accounts {accounts:6,d}  marked {marked:12,d}  alerts {corr.get('alerts', 0):5d}  "
        f"delivered {notif.get('delivered', 0):4d}/{notif.get('queued', 0):<4d}  "
        f"pending {states.get('pending', 0):4d}  orders {exe.get('orders', 0):4d}  "
        f"done {states.get('done', 0):4d}  moot {states.get('moot', 0):4d}  "
        f"failed {states.get('failed', 0):4d}"
    )
    return line, ticks


def _rounded(figures: dict[str, float] | None) -> dict[str, float] | None:
    return {k: round(v, 1) for k, v in figures.items()} if figures else figures


def fresh_journal(path: str) -> str:
    """Each demo run journals to a file of its own; `path` becomes a link to the newest, so
    `fengkong alerts` and `fengkong audit verify` read the last run by default."""
    link = Path(path)
    run = link.with_name(f"{link.stem}-{time.strftime('%Y%m%d-%H%M%S')}{link.suffix}")
    run.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or not link.exists():
        link.unlink(missing_ok=True)
        link.symlink_to(run.name)
    return str(run)


def run_demo(cfg: Config, out: TextIO = sys.stdout, address: str | None = None,
             roll_day_at_s: float | None = None) -> dict[str, Any]:  # fmt: skip
    """Run the demo for cfg.sim.duration_s; returns the summary it prints."""
    started = time.time()
    cfg = dataclasses.replace(
        cfg, audit=dataclasses.replace(cfg.audit, path=fresh_journal(cfg.audit.path))
    )
    # the demo's open policy, explicit and loud (issue 13 item 5): its auto-approver and
    # `fengkong approve --demo` decide unsigned; `fengkong run` refuses this flag
    cfg = dataclasses.replace(cfg, approval=dataclasses.replace(cfg.approval, demo_open=True))
    print("*** DEMO: approval.demo_open: decisions unsigned, any name approves "
          "(never in `fengkong run`)", file=out)  # fmt: skip
    sim, cfg, commodities = start_simulation(cfg)
    try:
        url = start_ray(cfg.cluster, address)
        print(f"Ray dashboard: {url or '(see ray status)'} — {dashboard_hint()}", file=out)
        system = start_system(cfg, commodities=commodities)
        print(
            f"actors up: {len(system.shards)} account shards, {len(system.books)} exposure books, "
            f"{len(system.feeds)} feed(s), correlator, notifier, executor, audit log "
            f"({time.time() - started:.0f} s after start)",
            file=out,
        )
        if system.console_url:
            print(f"console 风控台: {system.console_url}/login — {login_hint(cfg, demo=True)}",
                  file=out)  # fmt: skip
        days = seed_price_history(system, sim.exchange, cfg)
        # solved at the prices of now: the market walked on while Ray and the actors started
        ex = sim.exchange
        n = sim.accounts.publish_snapshots(
            ex.prices(), {i: ex.pre_settlement(i) for i in ex.instruments}
        )
        print(
            f"published {n:,} account snapshots over ZeroMQ; shock of {cfg.sim.shock_pct:+.0%} on "
            f"{', '.join(cfg.sim.shock_products)} at t={cfg.sim.shock_at_s:.0f}s; "
            f"{days} days of closing prices (the simulator's warm-up) in each exposure book",
            file=out,
        )
        summary = _loop(cfg, sim, system, out, started, roll_day_at_s)
        summary["dashboard_url"] = url
        return summary
    finally:
        try:
            if "system" in locals():
                stop_system(system)
        finally:
            sim.stop()


def _loop(
    cfg: Config, sim: Simulation, system: System, out: TextIO, started: float,
    roll_day_at_s: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    t0 = time.time()
    shocked = False
    before, shock_ts = 0, float("inf")
    rolled = roll_day_at_s is None
    next_approval = cfg.sim.shock_at_s + 8
    prev_ticks, prev_t = 0, t0
    figures: dict[str, Any] = {}
    while True:
        time.sleep(1.0)
        now = time.time()
        elapsed = now - t0
        if not shocked and elapsed >= cfg.sim.shock_at_s:
            before = ray.get(system.correlator.stats.remote(), timeout=30).get("alerts", 0)
            shock_ts = time.time()
            hit = sim.exchange.shock(list(cfg.sim.shock_products), cfg.sim.shock_pct)
            print(
                f"*** shock: {cfg.sim.shock_pct:+.0%} on {len(hit)} contracts ({', '.join(hit[:6])}…)"
                f"; alerts before it: {before}",
                file=out,
            )
            shocked = True
        if not rolled and elapsed >= float(roll_day_at_s or 0.0):
            rolled = roll_day(sim, out)
        if shocked and cfg.sim.auto_approve_as and elapsed >= next_approval:
            # The demo's risk desk decides in batches, as after a market-wide shock.
            results = ray.get(system.executor.approve_all_pending.remote(cfg.sim.auto_approve_as))
            if results:
                print(
                    f"*** {cfg.sim.auto_approve_as} approved {len(results)} proposals in one batch",
                    file=out,
                )
            next_approval = elapsed + APPROVAL_EVERY_S
        figures = gather(system)
        line, prev_ticks = progress_line(elapsed, figures, prev_ticks, now - prev_t)
        prev_t = now
        print(line, file=out, flush=True)
        if elapsed >= cfg.sim.duration_s:
            break
    ray.get(system.notifier.drain.remote(10))
    books = book_var(system)
    groups = ray.get(system.executor.groups.remote(), timeout=30)
    ray.get(system.audit.flush.remote())
    figures = gather(system)
    store = AuditStore(cfg.audit.path)
    breaks = store.verify()
    kpi = compute_kpis(store, started - 1.0, time.time())
    rate = kpi["closed_loop_rate"]
    summary = {
        "elapsed_s": round(time.time() - started, 1),
        "ticks": sum(f.get("ticks", 0) for f in figures["feeds"]),
        "accounts": sum(s.get("accounts", 0) for s in figures["shards"]),
        "accounts_marked": sum(s.get("accounts_marked", 0) for s in figures["shards"]),
        "alerts": figures["correlator"].get("alerts", 0),
        "alerts_before_shock": before if shocked else "(no shock yet)",
        "tick_to_alert_ms": _rounded(figures["correlator"].get("tick_to_alert_ms")),
        "of_which_data_to_rule_ms": _rounded(figures["correlator"].get("data_to_rule_ms")),
        "notifications": {
            k: figures["notifier"].get(k, 0) for k in ("queued", "delivered", "failed")
        },
        "proposals": figures["executor"].get("states", {}),
        "orders": figures["executor"].get("orders", 0),
        # batch groups to approve: the shock's proposals are a group of their own
        "approval_groups": ", ".join(
            f"{g['group_id']} {g['proposals']} {g['kind']} "
            f"({'after' if g['first_ts'] >= shock_ts else 'before'} the shock)"
            for g in sorted(groups, key=lambda g: g["first_ts"])
        )
        or "none",
        "books_with_var": var_line(books),
        # 闭环处置率: only executed-and-verified actions count (infra.reports.kpi)
        "closed_loop": (
            f"{percent(rate) if rate is not None else '—'} ({kpi['closed']}/{kpi['needed_action']}"
            f" executed and verified; moot {kpi['moot']}, failed {kpi['failed']}, "
            f"expired {kpi['expired']})"
        ),
        "sink_messages": len(sim.sink.messages()) if sim.sink else 0,
        "journal": str(store.path.resolve()),
        "journal_records": store.count(),
        "journal_chain_ok": not breaks,
    }
    store.close()
    print("\n=== summary ===", file=out)
    for key, value in summary.items():
        print(f"{key:>18}: {value}", file=out)
    # what the summary line stands for, for callers (tests, scripts); not printed
    summary.update(shock_ts=shock_ts, groups=groups, books=books)
    return summary
