"""CTP market data: one MdApi session publishing the feed's tick frames, as the simulator does.

    CTP front ──MdApi──▶ CtpMarketGateway ──PUB [b"T", encode_ticks(batch)]──▶ MarketFeed (SUB)

The SPI callbacks run on the library's own thread and only map and append (`mapping.tick_row`);
a flusher thread of ours sends what arrived every `batch_ms` as one columnar frame. Bad
snapshots are counted and quarantined with the reason; the rest of the batch goes on.

Connection: all fronts are registered (the API itself rotates through them and reconnects);
on every (re)connect the gateway logs in again and re-subscribes everything. When no front has
answered for `reconnect_after_s`, the API is released and created anew with the next front
first, waiting longer each time (doubling up to `backoff_max_s`), so a front that hangs
half-open does not keep the feed dark. (With several fronts registered the library's Release()
takes about 5 s: it waits for its own reconnect cycle.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq

from gateways.ctp import load
from gateways.ctp.config import Credentials, MdConfig
from gateways.ctp.mapping import BadSnapshot, product_of, tick_row
from gateways.ctp.spi import make_md_spi, rsp_error
from gateways.market.replay import Row, to_batch
from infra.codec import encode_ticks

log = logging.getLogger(__name__)
QUARANTINE_SIZE = 200


def exchange_lookup() -> Callable[[str], str]:
    """instrument → exchange from the contract table (CTP market data often omits ExchangeID)."""
    from infra.specs import load_contract_table

    table = load_contract_table()

    def exchange_of(instrument: str) -> str:
        try:
            return table.spec(product_of(instrument)).exchange
        except Exception:
            return ""

    return exchange_of


class CtpMarketGateway:
    def __init__(
        self,
        cfg: MdConfig,
        pub_endpoint: str,
        flow_dir: str | Path,
        *,
        credentials: Credentials | None = None,
        exchange_of: Callable[[str], str] | None = None,
        warmup_s: float = 0.0,
    ) -> None:
        self.cfg = cfg
        self.pub_endpoint = pub_endpoint
        self.flow_dir = Path(flow_dir) / "md"
        self._credentials = credentials or Credentials()
        self.exchange_of = exchange_of or exchange_lookup()
        self.warmup_s = warmup_s
        self.instruments: set[str] = set(cfg.instruments)
        self.stats: dict[str, Any] = {
            "ticks": 0, "frames": 0, "bad_snapshots": 0, "connects": 0, "disconnects": 0,
            "logins": 0, "login_failures": 0, "subscribed": 0, "api_restarts": 0, "last_error": "",
        }  # fmt: skip
        self.quarantine: deque[dict[str, Any]] = deque(maxlen=QUARANTINE_SIZE)
        self.connected = False
        self.logged_in = False
        self._rows: list[Row] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pub: zmq.Socket | None = None
        self._api: Any = None
        self._spi = make_md_spi(self)
        self._front = 0
        self._down_since: float | None = None
        self._backoff = cfg.reconnect_after_s
        self._request_id = 0

    @property
    def spi(self) -> Any:
        return self._spi

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, connect: bool = True) -> CtpMarketGateway:
        self._pub = zmq.Context.instance().socket(zmq.PUB)
        self._pub.setsockopt(zmq.SNDHWM, 100_000)
        self._pub.bind(self.pub_endpoint)
        if self.warmup_s:
            time.sleep(self.warmup_s)
        if connect:
            self._create_api()
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="ctp-md", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._release_api()
        if self._pub is not None:
            self._pub.close(linger=0)
            self._pub = None

    def _create_api(self) -> None:
        mdapi, _ = load()
        self.flow_dir.mkdir(parents=True, exist_ok=True)  # the library crashes without it
        api = mdapi.CThostFtdcMdApi.CreateFtdcMdApi(str(self.flow_dir) + "/")
        api.RegisterSpi(self._spi)
        fronts = list(self.cfg.fronts)
        for front in fronts[self._front :] + fronts[: self._front]:
            api.RegisterFront(front)
        api.Init()
        self._api = api
        self._down_since = time.monotonic()

    def _release_api(self) -> None:
        api, self._api = self._api, None
        if api is not None:
            api.RegisterSpi(None)
            api.Release()

    # -- callbacks (library thread) --------------------------------------------------------
    def on_front_connected(self) -> None:
        self.connected = True
        self._down_since = None
        self.stats["connects"] += 1
        mdapi, _ = load()
        req = mdapi.CThostFtdcReqUserLoginField()
        req.BrokerID = self.cfg.broker_id
        req.UserID = self.cfg.user_id
        req.Password = self._credentials.password
        if self._api is not None:
            self._request_id += 1
            self._api.ReqUserLogin(req, self._request_id)

    def on_front_disconnected(self, reason: int) -> None:
        self.connected = self.logged_in = False
        self._down_since = time.monotonic()
        self.stats["disconnects"] += 1
        self.stats["last_error"] = f"front disconnected (reason 0x{int(reason):04x})"
        log.warning("CTP market data: front disconnected, reason 0x%04x", int(reason))

    def on_login(self, _login: Any, info: Any) -> None:
        code, msg = rsp_error(info)
        if code:
            self.stats["login_failures"] += 1
            self.stats["last_error"] = f"login refused: {code} {msg}"
            log.error("CTP market data login refused: %s %s", code, msg)
            return
        self.logged_in = True
        self.stats["logins"] += 1
        self._backoff = self.cfg.reconnect_after_s
        self._subscribe(sorted(self.instruments))

    def on_subscribed(self, specific: Any, info: Any) -> None:
        code, msg = rsp_error(info)
        if code:
            self.stats["last_error"] = (
                f"subscribe {getattr(specific, 'InstrumentID', '?')}: {code} {msg}"
            )

    def on_error(self, info: Any) -> None:
        code, msg = rsp_error(info)
        self.stats["last_error"] = f"{code} {msg}"

    def on_depth(self, f: Any) -> None:
        try:
            instrument = str(f.InstrumentID).strip()
            row, _tday = tick_row(f, self.exchange_of(instrument) if instrument else "")
        except (BadSnapshot, ValueError, TypeError) as exc:
            self.stats["bad_snapshots"] += 1
            self.quarantine.append(
                {"reason": str(exc), "instrument": str(f.InstrumentID), "ts": time.time()}
            )
            return
        with self._lock:
            self._rows.append(row)

    # -- subscriptions ---------------------------------------------------------------------
    def subscribe(self, instruments: list[str]) -> None:
        """Add instruments (those the accounts hold); subscribed now when logged in."""
        new = sorted(set(instruments) - self.instruments)
        self.instruments.update(new)
        if new and self.logged_in:
            self._subscribe(new)

    def _subscribe(self, instruments: list[str]) -> None:
        if self._api is not None and instruments:
            # this SWIG binding takes the names as bytes (a list of str is refused)
            names = [i.encode("ascii") for i in instruments]
            self._api.SubscribeMarketData(names, len(names))
            self.stats["subscribed"] += len(instruments)

    # -- flusher / watchdog ----------------------------------------------------------------
    def flush(self) -> int:
        with self._lock:
            rows, self._rows = self._rows, []
        if not rows or self._pub is None:
            return 0
        batch = to_batch(rows)
        batch.sent_ts = time.time()
        self._pub.send_multipart([b"T", encode_ticks(batch)])
        self.stats["ticks"] += len(rows)
        self.stats["frames"] += 1
        return len(rows)

    def _loop(self) -> None:
        while not self._stop.wait(self.cfg.batch_ms / 1000):
            self.flush()
            self._watch()
        self.flush()

    def _watch(self) -> None:
        down = self._down_since
        if self._api is None or down is None or time.monotonic() - down < self._backoff:
            return
        self._front = (self._front + 1) % max(1, len(self.cfg.fronts))
        self.stats["api_restarts"] += 1
        log.warning("CTP market data: no front for %.0f s, new API on %s", self._backoff,
                    self.cfg.fronts[self._front])  # fmt: skip
        self._backoff = min(self._backoff * 2, self.cfg.backoff_max_s)
        self._release_api()
        self._create_api()
