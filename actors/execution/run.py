"""Carrying out approved proposals: plan, orders, reports, re-pricing, verification, closing.

A mixin of ExecutorCore (it uses the core's state, lock, journal and bridge). The order ref of
leg i, attempt k is stable_id("order", proposal, i[, k]): the same after any restart, so a
resend can only ever be refused as a duplicate, never executed twice.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from gateways.orders.bridge import wire_order
from rules.actions import AGGRESSION_TICKS, limit_price, plan_action, target_met
from rules.model import Alert, ProposalState, stable_id
from rules.orders import TERMINAL, WORKING, reprice_ticks

if TYPE_CHECKING:
    from actors.execution.core import ExecutorCore

ACTOR = "Executor"


def order_ref(proposal_id: str, leg: int, attempt: int = 0) -> str:
    if attempt == 0:
        return stable_id("order", proposal_id, leg, length=12)
    return stable_id("order", proposal_id, leg, attempt, length=12)


class ExecutionMixin:
    # ---- plans to orders -----------------------------------------------------------------------

    def _execute(self: ExecutorCore, pids: list[str]) -> dict[str, dict[str, Any]]:
        """Plan each approved proposal on fresh figures, journal plan and orders, then send."""
        with self.lock:
            props = [
                self.state.proposals[p]
                for p in pids
                if self.state.proposals[p].state is ProposalState.APPROVED
            ]
        views = self._views([p.account_id for p in props])
        records: list[dict[str, Any]] = []
        commands: list[dict[str, Any]] = []
        calls: list[Alert] = []
        results: dict[str, dict[str, Any]] = {}
        no_view: list[str] = []
        now = time.time()
        for p in props:
            view = views.get(p.account_id)
            if view is None:
                no_view.append(p.proposal_id)
                continue
            plan = plan_action(view, p.kind, p.target_risk_degree, self.s.margin_call_deadline_s)
            plan_rec = {k: v for k, v in plan.to_record().items() if k != "kind"}
            records.append(
                self._rec("plan", p.account_id, p.proposal_id, plan_kind=plan.kind, **plan_rec)
            )
            records.append(self._mark_record(p.proposal_id, view, "plan"))
            for i, leg in enumerate(plan.legs):
                ref = order_ref(p.proposal_id, i)
                records.append(self._order_record(p, ref, i, 0, leg.instrument, leg.direction,
                                                  leg.offset, leg.volume, leg.limit_price,
                                                  leg.reason))  # fmt: skip
            if plan.kind == "margin_call":
                deadline = now + plan.deadline_s
                records.append(
                    self._rec("margin_call", p.account_id, p.proposal_id,
                              amount=plan.margin_call, deadline_ts=deadline)
                )  # fmt: skip
                calls.append(self._margin_call_alert(p, plan.margin_call, deadline, plan))
            if plan.kind == "freeze":
                records.append(
                    self._rec("trading_state", p.account_id, p.proposal_id, state="REDUCING")
                )
                commands.append(
                    {"type": "trading_state", "account_id": p.account_id, "state": "REDUCING"}
                )
            results[p.proposal_id] = {
                "orders": len(plan.legs),
                "explanation": plan.explanation,
                "skipped": plan.skipped,
            }
        self._durable(records)
        self._apply(records)
        orders = [r for r in records if r["kind"] == "order"]
        self.bridge.send([wire_order(o) for o in orders] + commands)
        self.counts["orders"] += len(orders)
        if orders:
            self._m_orders.inc(len(orders), tags={"actor": ACTOR})
        if calls and self.notifier is not None:
            self.notifier.notify.remote(calls)
        for pid in no_view:
            self._close(pid, ProposalState.FAILED, "NO_VIEW: the account is not on its shard")
        deadline = time.time() + self.s.verify_timeout_s
        with self.lock:
            for pid, res in results.items():
                p = self.state.proposals[pid]
                res["state"] = p.state.value
                if p.kind == "margin_call":
                    self._verifying[pid] = self.state.deadline.get(pid, deadline)
                elif not res["orders"]:  # nothing to trade (or a freeze): verify as it stands
                    self._verifying[pid] = deadline
        return results

    def _order_record(
        self: ExecutorCore, p: Any, ref: str, leg: int, attempt: int, instrument: str,
        direction: str, offset: str, volume: float, price: float, reason: str,
    ) -> dict[str, Any]:  # fmt: skip
        return self._rec(
            "order", p.account_id, ref, order_ref=ref, proposal_id=p.proposal_id,
            account_id=p.account_id, instrument=instrument, direction=direction, offset=offset,
            volume=volume, limit_price=price, created_ts=time.time(), leg=leg, attempt=attempt,
            reason=reason,
        )  # fmt: skip

    def _margin_call_alert(
        self: ExecutorCore, p: Any, amount: float, deadline: float, plan: Any
    ) -> Alert:
        when = time.strftime("%H:%M", time.localtime(deadline))
        return Alert(
            alert_id=stable_id("margin_call", p.proposal_id),
            rule_id="action.margin_call",
            key=p.account_id,
            severity="critical",
            title=f"追加保证金 margin call {p.account_id}: deposit {amount:,.2f} by {when}",
            value=amount,
            threshold=p.target_risk_degree,
            created_ts=time.time(),
            ingress_ts=p.created_ts,
            dimension="margin_call",
            attributes={"proposal_id": p.proposal_id, "explanation": plan.explanation},
        )

    # ---- reports -------------------------------------------------------------------------------

    def _on_reports(self: ExecutorCore, reports: list[dict[str, Any]]) -> None:
        """Gateway reports (bridge thread): advance orders; open the way to verification."""
        records: list[dict[str, Any]] = []
        resend: list[dict[str, Any]] = []
        query: list[str] = []
        with self.lock:
            for r in reports:
                if r.get("status") == "trading_state":
                    records += self._state_acked(r)
                    continue
                ref = r.get("order_ref")
                order = self.state.orders.get(ref) if isinstance(ref, str) else None
                if order is None:
                    continue  # another executor's order
                body = {k: v for k, v in r.items() if k not in ("kind", "actor", "key", "ref")}
                body["report_ts"] = body.pop("ts", time.time())
                rec = self._rec("order_report", order["account_id"], ref, **body)
                before = (order["status"], order["filled"])
                follow = self.state._on_order_report(rec)
                changed = before != (order["status"], order["filled"])
                if changed or r.get("status") in ("duplicate", "unknown", "rejected"):
                    records.append(rec)
                if follow == "resend":
                    resend.append(wire_order(order))
                elif follow == "query":
                    query.append(ref)
                if not changed:
                    continue
                if order["status"] == "filled" or order["filled"] > before[1]:
                    order["fill_ts"] = body["report_ts"]
                pid = order["proposal_id"]
                if order["status"] == "cancelled" and order.get("cancel_reason") == "REPRICE":
                    self._reprice.add(ref)
                elif order["status"] in TERMINAL and self.state.orders_done(pid):
                    p = self.state.proposals[pid]
                    if p.state is ProposalState.EXECUTING and pid not in self._verifying:
                        self._verifying[pid] = time.time() + self.s.verify_timeout_s
        self._append(records)
        self.counts["reports"] += len(reports)
        if resend:
            self.counts["resent"] += len(resend)
            self.bridge.send(resend)
        if query:
            self.bridge.send([{"type": "query", "order_ref": q} for q in query])

    def _state_acked(self: ExecutorCore, report: dict[str, Any]) -> list[dict[str, Any]]:
        account = report.get("account_id")
        out = []
        for p in self.state.by_state(ProposalState.EXECUTING):
            if p.kind == "freeze" and p.account_id == account:
                rec = self._rec("trading_state", account, p.proposal_id,
                                state=report.get("state"), acked=True)  # fmt: skip
                self.state.apply(rec)
                self._verifying[p.proposal_id] = time.time()
                out.append(rec)
        return out

    # ---- open orders: status queries, re-pricing -----------------------------------------------

    def _orders_round(self: ExecutorCore, now: float) -> None:
        queries, cancels, records = [], [], []
        with self.lock:
            for ref, o in self.state.orders.items():
                if o["status"] in TERMINAL:
                    continue
                p = self.state.proposals.get(o["proposal_id"])
                if p is None or p.state is not ProposalState.EXECUTING:
                    continue
                if now - max(o["report_ts"], o.get("query_ts", 0.0)) >= self.s.query_after_s and (
                    o["status"] == "submitted" or o["report_ts"] == 0.0
                ):
                    o["query_ts"] = now
                    queries.append({"type": "query", "order_ref": ref})
                if (
                    o["status"] in WORKING
                    and "cancel_reason" not in o
                    and now - o["sent_ts"] >= self.s.reprice_after_s
                ):
                    why = "REPRICE" if o.get("attempt", 0) < self.s.max_reprices else "GIVE_UP"
                    rec = self._rec("order_cancel", o["account_id"], ref, reason=why)
                    self.state.apply(rec)
                    records.append(rec)
                    cancels.append({"type": "cancel", "order_ref": ref})
        self._append(records)
        self.bridge.send(queries + cancels)
        self.counts["queries"] += len(queries)
        self.counts["cancels"] += len(cancels)
        if self._reprice:
            self._send_replacements()

    def _send_replacements(self: ExecutorCore) -> None:
        """Orders cancelled for re-pricing come back further through the market."""
        with self.lock:
            todo = [self.state.orders[r] for r in list(self._reprice)]
            self._reprice.clear()
        todo = [o for o in todo if o["volume"] - o["filled"] > 0]
        if not todo:
            return
        views = self._views([o["account_id"] for o in todo])
        records = []
        with self.lock:
            for o in todo:
                p = self.state.proposals[o["proposal_id"]]
                view = views.get(o["account_id"])
                pos = next(
                    (x for x in (view or {}).get("positions", ())
                     if x["instrument"] == o["instrument"]
                     and (x["direction"] == "long") == (o["direction"] == "short")),
                    None,
                )  # fmt: skip
                if pos is None or p.state is not ProposalState.EXECUTING:
                    continue
                attempt = int(o.get("attempt", 0)) + 1
                selling = o["direction"] == "short"
                price = limit_price(
                    selling, pos["last"], pos.get("tick_size", 0.0) or 0.0,
                    pos.get("upper_limit", math.nan), pos.get("lower_limit", math.nan),
                    reprice_ticks(AGGRESSION_TICKS, attempt),
                )  # fmt: skip
                volume = min(o["volume"] - o["filled"], pos["volume"])
                ref = order_ref(p.proposal_id, o["leg"], attempt)
                if ref in self.state.orders or volume <= 0:
                    continue
                records.append(self._order_record(
                    p, ref, o["leg"], attempt, o["instrument"], o["direction"], o["offset"],
                    volume, price, f"re-price {attempt}: {o['order_ref']} unfilled after "
                    f"{self.s.reprice_after_s:.0f} s",
                ))  # fmt: skip
        self._durable(records)
        self._apply(records)
        self.bridge.send([wire_order(r) for r in records])
        self.counts["repriced"] += len(records)
        self.counts["orders"] += len(records)

    # ---- verification and closing --------------------------------------------------------------

    def _verify_round(self: ExecutorCore, now: float) -> None:
        with self.lock:
            due = {
                pid: dl
                for pid, dl in self._verifying.items()
                if self.state.proposals[pid].kind != "margin_call"
                or now - self._last_check.get(pid, 0.0) >= 1.0
                or now >= dl
            }
        if not due:
            return
        props = {pid: self.state.proposals[pid] for pid in due}
        views = self._views([p.account_id for p in props.values()])
        for pid, p in props.items():
            view = views.get(p.account_id)
            skipped = len(self.state.plans.get(pid, {}).get("skipped", ()))
            if p.kind == "freeze":
                met = pid in self.state.state_acked
                last = self._last_check.setdefault(pid, now)
                if not met and now - last >= 1.0:
                    # the confirmation may have been lost on PUB/SUB: the command is idempotent
                    self._last_check[pid] = now
                    self.bridge.send([{"type": "trading_state", "account_id": p.account_id,
                                       "state": "REDUCING"}])  # fmt: skip
            else:
                met = target_met(p.kind, p.target_risk_degree, view or {}, skipped)
            if p.kind == "margin_call":
                self._last_check[pid] = now
            if met:
                self._close(pid, ProposalState.DONE, "", view)
            elif now >= due[pid]:
                self._close(pid, ProposalState.FAILED, self._why_not(p, view), view)

    def _why_not(self: ExecutorCore, p: Any, view: dict[str, Any] | None) -> str:
        plan = self.state.plans.get(p.proposal_id, {})
        rd = (view or {}).get("risk_degree", float("nan"))
        orders = [self.state.orders[r] for r in self.state.orders_of.get(p.proposal_id, ())]
        unfilled = [o["order_ref"] for o in orders if o["status"] != "filled"]
        if p.kind == "margin_call":
            return f"MARGIN_CALL_UNMET: risk degree {rd:.2%} > {p.target_risk_degree:.0%} at the deadline"
        if p.kind == "freeze":
            return "TRADING_STATE_NOT_CONFIRMED: the gateway did not confirm REDUCING"
        parts = [f"TARGET_NOT_MET: risk degree {rd:.2%} > target {p.target_risk_degree:.0%}"]
        if plan.get("skipped"):
            parts.append(f"LIMIT_LOCKED: {len(plan['skipped'])} position(s) could not be traded")
        if unfilled:
            parts.append(f"UNFILLED: {len(unfilled)} order(s) not filled")
        return "; ".join(parts)

    def _close(
        self: ExecutorCore,
        pid: str,
        state: ProposalState,
        reason: str,
        view: dict[str, Any] | None = None,
        decided_by: str = "",
    ) -> None:
        with self.lock:
            p = self.state.proposals[pid]
            if pid in self.state.closed:
                self._verifying.pop(pid, None)
                return
            orders = [self.state.orders[r] for r in self.state.orders_of.get(pid, ())]
        fills = [o["fill_ts"] for o in orders if o.get("fill_ts")]
        now = time.time()
        figures = {}
        if view:
            figures = {
                "risk_degree_after": view["risk_degree"],
                "equity_after": view["equity"],
                "margin_after": view["margin"],
                "available_after": view.get("available"),
                "prices_after": {x["instrument"]: x["last"] for x in view["positions"]},
                "positions_after": [
                    {k: x[k] for k in ("instrument", "direction", "volume")}
                    for x in view["positions"]
                ],
            }
        rec = self._rec(
            "proposal_closed", p.account_id, pid, state=state.value, reason=reason,
            proposal_kind=p.kind, alert_id=p.alert_id, filled=sum(o["filled"] for o in orders),
            orders=len(orders), decided_by=decided_by or p.decided_by,
            proposal_to_fill_ms=(max(fills) - p.created_ts) * 1000 if fills else None,
            decision_to_fill_ms=(max(fills) - p.decided_ts) * 1000
            if fills and p.decided_ts else None,
            **figures,
        )  # fmt: skip
        with self.lock:
            if pid in self.state.closed:
                return
            self.state.apply(rec)
            self._verifying.pop(pid, None)
            self.counts[state.value] += 1
        if fills:
            self.proposal_to_fill.add((max(fills) - p.created_ts) * 1000)
        if p.decided_ts and state is not ProposalState.REJECTED:
            ms = (now - p.decided_ts) * 1000
            self.decision_to_close.add(ms)
            self._m_exec.observe(ms, tags={"actor": ACTOR})
        self._m_closed.inc(tags={"actor": ACTOR, "state": state.value})
        self._m_rate.set(self.closed_loop_rate(), tags={"actor": ACTOR})
        records = [rec]
        if view:
            records.append(self._mark_record(pid, view, "closed"))
        self._append(records)
