"""What the account bus keeps of the records that left its bounded log: the compacted state.

Why: the bus once kept every record for the session (721,000 after a flood) so a shard that
restarted could replay from the start. Now the log holds the newest `log_size` records; a
record that leaves it is folded here, where a later record that supersedes it for the account
book drops it (log compaction keyed by what the record changes):

- a `snapshot` replaces everything known about the account (rules.book: figures and every
  position), so it drops that account's earlier snapshot, trades, transfers, updates and
  removes: per account the latest snapshot and what came after it — unless an order of the
  account is still working (its freeze was computed on the state before the snapshot and
  survives it, so that state is kept until the order ends or the day settles);
- an `order` with a `status` freezes margin until a later record of the same
  (account_id, order_ref) replaces the freeze, so per order the latest record is kept; a
  `settlement` releases every order, so it drops the order records before it;
- an `order` without `status` and a `cancel` change no book figure (they feed the behaviour
  windows, which are about the last seconds): they are not kept;
- a `settlement` copy is kept while an account of its bucket still has a record from before it.

Replayed in bseq order, the kept records rebuild every account's book exactly (figures and
open positions); what a replay after compaction does not rebuild is history that only the
time-window rules read (order rates, a day's transfers superseded by a snapshot, which carries
the day's transfers itself). docs/accounts-wire.md says this for operators.

Memory: one entry per account (its latest snapshot), the records since it, the day's orders
with a status and the settlements in use. A source that never re-snapshots an account keeps
that account's fills since its last snapshot here; `held` counts every record kept.
"""

from __future__ import annotations

from typing import Any

Record = dict[str, Any]


class Compaction:
    """The compacted records, per bucket; `fold` takes records in the order they left the log."""

    def __init__(self) -> None:
        self.accounts: dict[str, list[Record]] = {}  # the latest snapshot and what followed
        self.bucket_accounts: dict[int, set[str]] = {}
        self.orders: dict[tuple[str, str], Record] = {}  # (account_id, order_ref): latest
        self.working: dict[str, int] = {}  # kept orders still working, per account
        self.bucket_orders: dict[int, set[tuple[str, str]]] = {}
        self.settlements: dict[int, list[Record]] = {}
        self.held = 0
        self.superseded = 0  # records dropped because a later one replaced their effect

    def fold(self, rec: Record) -> None:
        bucket, kind = rec["bucket"], rec["type"]
        if kind == "settlement":
            self._settle(bucket, rec)
        elif kind == "cancel" or (kind == "order" and rec.get("status") is None):
            self.superseded += 1  # no book figure depends on it
        elif kind == "order":
            key = (rec["account_id"], str(rec.get("order_ref")))
            self._drop_order(key)
            self.orders[key] = rec
            if _working(rec):
                self.working[key[0]] = self.working.get(key[0], 0) + 1
            self.bucket_orders.setdefault(bucket, set()).add(key)
            self.held += 1
        else:
            account = rec["account_id"]
            kept = self.accounts.setdefault(account, [])
            if kind == "snapshot" and kept and not self.working.get(account):
                self.held -= len(kept)
                self.superseded += len(kept)
                kept.clear()
            kept.append(rec)
            self.held += 1
            self.bucket_accounts.setdefault(bucket, set()).add(account)

    def _drop_order(self, key: tuple[str, str]) -> None:
        old = self.orders.pop(key, None)
        if old is None:
            return
        self.held -= 1
        self.superseded += 1
        if _working(old):
            self.working[key[0]] -= 1
            if not self.working[key[0]]:
                del self.working[key[0]]

    def _settle(self, bucket: int, rec: Record) -> None:
        for key in self.bucket_orders.pop(bucket, set()):  # settlement releases every order
            self._drop_order(key)
        kept = self.settlements.setdefault(bucket, [])
        kept.append(rec)
        self.held += 1
        # An older settlement is needed while some account still has a record from before it.
        oldest = min(
            (self.accounts[a][0]["seq"] for a in self.bucket_accounts.get(bucket, ())),
            default=rec["seq"],
        )
        while len(kept) > 1 and kept[0]["seq"] < oldest:
            kept.pop(0)
            self.held -= 1
            self.superseded += 1

    def records(self, bucket: int, after: int) -> list[Record]:
        """The kept records of `bucket` with bseq > `after`, in bseq order."""
        out = [r for r in self.settlements.get(bucket, ()) if r["bseq"] > after]
        for account in self.bucket_accounts.get(bucket, ()):
            out.extend(r for r in self.accounts[account] if r["bseq"] > after)
        for key in self.bucket_orders.get(bucket, ()):
            if self.orders[key]["bseq"] > after:
                out.append(self.orders[key])
        out.sort(key=lambda r: r["bseq"])
        return out


def _working(rec: Record) -> bool:
    return rec.get("status") not in ("filled", "cancelled")
