"""Market kinds: rules on a contract's statistics (rules.market_stats), evaluated by the
MarketFeed and by the backtest through rules.engine.kinds.market_set.

| kind          | compared value                                            | fires when  |
| ------------- | --------------------------------------------------------- | ----------- |
| jump          | largest |move over N s| / expected size in the slice       | > threshold |
| near_limit    | smallest distance to the limit price, fraction of price   | < threshold |
| limit_locked  | 1 while the contract is locked at a limit                 | > threshold |
| volume_spike  | volume of the spike window / baseline expectation         | > threshold |
| oi_spike      | |open-interest change| of the window / baseline expectation | > threshold |
| volatility    | annualized realized volatility over `window_s`            | > threshold |
| stale         | seconds without a tick, live contracts in their session   | > threshold |
| feed_silent   | seconds without any tick from the whole feed, in session  | > threshold |
| vol_scaled_move | |move over N bars| / the contract's own σ of such a move   | > threshold |

`vol_scaled_move` is adaptive: its threshold is k × a volatility the contract learned itself
(rules.engine.kinds.vol_scaled keeps that state; its alerts carry score and baseline).

A kind is one line of MARKET_KIND_LIST: its name, operator, parameters, scope and the slice
signal it compares. Each kind fixes its operator (`op` may be left out of a rules file). `products` restricts a
rule to product codes or instrument ids; `sessions` to named sessions: outside them a contract
is not evaluated and keeps its arming state. Hysteresis is the engine's one ThresholdBank.
"""

from __future__ import annotations

from typing import Any

from rules.engine.spec import RuleSpec, check_common
from rules.engine.template import Param, RuleKind
from rules.sessions import label_mask

PRODUCTS = Param("products", tuple, None, "only these products or instruments")


class MarketKind(RuleKind):
    """A market kind: one per statistic, all alike but for their operator and parameters."""

    scopes: tuple[str, ...] = ("contract",)
    needs_metric = False
    op = ">"

    def __init__(self, name: str, op: str = ">", params: tuple[Param, ...] = (PRODUCTS,),
                 scope: str = "contract", signal: str = "") -> None:  # fmt: skip
        self.name = name
        self.op = op
        self.signal = signal  # the rules.market_stats.SliceSignals field a tick kind compares
        self.params = params
        self.scopes = (scope,)

    def place(self, spec: RuleSpec) -> str:
        return "market"

    def check(self, spec: RuleSpec, metrics: Any) -> None:
        check_common(spec)
        if spec.scope not in self.scopes:
            raise ValueError(
                f"scope: kind {self.name!r} runs on {self.scopes[0]}s, got {spec.scope!r}"
            )
        if spec.op != self.op:
            raise ValueError(
                f"op: kind {self.name!r} fires {self.op!r} its threshold, got {spec.op!r}"
            )
        if self.name == "vol_scaled_move":
            for key in ("bar_s", "window_bars", "min_bars"):
                if int(spec.param(key, 1)) < 1:
                    raise ValueError(f"{key}: must be at least 1")
            if float(spec.param("halflife_bars", 1.0)) <= 0:
                raise ValueError("halflife_bars: must be positive")
            if spec.threshold <= 0:
                raise ValueError("threshold: k (in σ) must be positive")


MARKET_KIND_LIST: tuple[MarketKind, ...] = (
    MarketKind("jump", signal="jump_z"),
    MarketKind("near_limit", "<", signal="near_limit"),
    MarketKind("limit_locked", signal="locked"),
    MarketKind("volume_spike", signal="volume_ratio"),
    MarketKind("oi_spike", signal="oi_ratio"),
    MarketKind(
        "volatility",
        params=(
            Param(
                "window_s",
                int,
                300,
                "realized-volatility window (one of market.stats.vol_windows_s)",
            ),
            PRODUCTS,
        ),
        signal="rv",  # by window: rv[window_s]
    ),
    MarketKind("stale"),
    MarketKind("feed_silent", params=(), scope="feed"),
    MarketKind(
        "vol_scaled_move",
        params=(
            Param("bar_s", int, 60, "bars the volatility baseline is learned on (seconds)"),
            Param("window_bars", int, 5, "the move is over this many bars"),
            Param("halflife_bars", float, 240.0, "the baseline's halflife in bars"),
            Param("min_bars", int, 30, "bars seen before a contract has a baseline"),
            PRODUCTS,
        ),
        signal="adaptive",  # no SliceSignals field: MarketRuleSet keeps a VolScaledMove state
    ),
)
ADAPTIVE_KINDS = ("vol_scaled_move",)
KIND_OF = {k.name: k for k in MARKET_KIND_LIST}
MARKET_KINDS = tuple(KIND_OF)
TICK_KINDS = tuple(k.name for k in MARKET_KIND_LIST if k.signal)  # on every slice of ticks
CHECK_KINDS = tuple(k.name for k in MARKET_KIND_LIST if not k.signal)  # on the feed's timer
OP_OF = {k.name: k.op for k in MARKET_KIND_LIST}
SCOPE_OF = {k.name: k.scopes[0] for k in MARKET_KIND_LIST}


def market_spec(
    id: str, kind: str, threshold: float, rearm: float, severity: str = "warning",
    sessions: tuple[str, ...] = (), products: tuple[str, ...] = (), window_s: int = 0,
    description: str = "",
) -> RuleSpec:  # fmt: skip
    """A market rule as a spec, from the fields the config's `[[market.rules]]` used; checked
    by its kind (ValueError 'key: why')."""
    if kind not in OP_OF:
        raise ValueError(f"kind: {kind!r} is not one of {MARKET_KINDS}")
    params: dict[str, Any] = {}
    if products:
        params["products"] = tuple(products)
    if kind == "volatility":
        params["window_s"] = int(window_s)
    spec = RuleSpec(
        id=id, kind=kind, metric=kind, scope=SCOPE_OF[kind], op=OP_OF[kind],
        threshold=float(threshold), rearm=float(rearm), severity=severity,
        description=description, sessions=tuple(sessions), params=params,
    )  # fmt: skip
    label_mask(spec.sessions)
    KIND_OF[kind].check(spec, ())
    return spec
