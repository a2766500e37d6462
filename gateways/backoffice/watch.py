"""A watched folder of back-office exports: new or changed CSV files are loaded (`loader`) and
pushed onto the account bus; what was loaded is remembered in the folder
(`.fengkong-loaded.json`: name → size and mtime), so a restart does not load a file twice. A file
is taken only once its size has stayed the same over one scan (an export still being written is
left for the next scan). Files of one scan load together, so a day's accounts and positions
files that arrive together become one snapshot per account.

    [backoffice]
    watch_dir = "/data/settlement/out"   # "" = no watcher
    scan_s = 5.0
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateways.backoffice.loader import LoadResult, expand, load_files
from gateways.ctp.config import build, fail

log = logging.getLogger(__name__)
STATE_FILE = ".fengkong-loaded.json"


@dataclass(frozen=True)
class BackofficeConfig:
    watch_dir: str = ""
    scan_s: float = 5.0


def parse(table: dict[str, Any], _cfg: Any = None) -> BackofficeConfig:
    """Validate the raw [backoffice] table (the config loader's hook)."""
    cfg: BackofficeConfig = build(BackofficeConfig, table, "backoffice")
    if cfg.scan_s <= 0:
        fail("backoffice.scan_s", "must be positive")
    if cfg.watch_dir:
        path = Path(cfg.watch_dir).expanduser().resolve()
        if not path.is_dir():
            fail("backoffice.watch_dir", f"{path} is not a folder")
        cfg = BackofficeConfig(str(path), cfg.scan_s)
    return cfg


def register() -> None:
    from infra.config import EDGE_VALIDATORS

    EDGE_VALIDATORS["backoffice"] = parse


class BackofficeWatcher:
    def __init__(self, folder: str | Path, publish: Callable[[list[dict[str, Any]]], None],
                 scan_s: float = 5.0) -> None:  # fmt: skip
        self.folder = Path(folder)
        self.publish = publish
        self.scan_s = scan_s
        self.stats: dict[str, int] = {"files": 0, "records": 0, "problems": 0, "scans": 0}
        self.problems: deque[str] = deque(maxlen=500)
        self._state_path = self.folder / STATE_FILE
        self._loaded: dict[str, list[float]] = self._read_state()
        self._seen: dict[str, list[float]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_state(self) -> dict[str, list[float]]:
        try:
            return json.loads(self._state_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def scan(self) -> LoadResult:
        """One pass: load the stable new or changed files, publish, remember them."""
        self.stats["scans"] += 1
        ready = []
        for path in expand([self.folder]):
            st = path.stat()
            mark = [float(st.st_size), st.st_mtime]
            if self._loaded.get(path.name) == mark:
                continue
            if self._seen.get(path.name) == mark:
                ready.append(path)
            self._seen[path.name] = mark
        result = load_files(ready) if ready else LoadResult()
        if result.records:
            self.publish(result.records)
        for problem in result.problems:
            log.warning("back office: %s", problem)
            self.problems.append(problem)
        for path in ready:
            self._loaded[path.name] = self._seen.pop(path.name)
        if ready:
            self._state_path.write_text(
                json.dumps(self._loaded, ensure_ascii=False), encoding="utf-8"
            )
        self.stats["files"] += len(ready)
        self.stats["records"] += len(result.records)
        self.stats["problems"] += len(result.problems)
        return result

    def start(self) -> BackofficeWatcher:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="backoffice-watch", daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.scan_s):
            try:
                self.scan()
            except OSError as exc:  # the folder went away for a moment (a remount)
                self.problems.append(f"scan: {exc}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
