"""CTP gateways (market data, trading sessions, order routing) over `openctp-ctp`.

`openctp-ctp` is the optional extra `fengkong[ctp]`; nothing else of fengkong imports it. The
library's C++ core aborts the whole process (`locale::facet::_S_create_c_locale name not valid`)
when the `zh_CN.GB18030` locale is missing, so `load()` first imports it in a throw-away
subprocess and only then in this one; a machine without the locale or the package gets a
`CtpUnavailable` that says which, never a dead process.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from types import ModuleType

LOCALE = "zh_CN.GB18030"
_PROBE = "from openctp_ctp import thostmduserapi, thosttraderapi; print(thostmduserapi.CThostFtdcMdApi.GetApiVersion())"


class CtpUnavailable(RuntimeError):
    """The CTP library cannot be loaded here; the message says why and what to do."""


@functools.lru_cache(maxsize=1)
def _probe() -> str:
    """'' when the library loads in a subprocess, else the reason it does not."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"probe of openctp-ctp failed: {exc}"
    if done.returncode == 0:
        return ""
    err = (done.stderr or "").strip().splitlines()
    tail = err[-1] if err else f"exit code {done.returncode}"
    if "ModuleNotFoundError" in tail or "No module named" in tail:
        return "openctp-ctp is not installed (pip install 'fengkong[ctp]')"
    if "locale" in (done.stderr or "") or done.returncode < 0:
        return (
            f"openctp-ctp aborts without the {LOCALE} locale ({tail}); install it with "
            f"`localedef -i zh_CN -f GB18030 {LOCALE}` (Debian: apt-get install locales)"
        )
    return f"openctp-ctp does not load: {tail}"


def unavailable_reason() -> str:
    """Why CTP cannot be used on this machine, or '' when it can."""
    return _probe()


@functools.lru_cache(maxsize=1)
def load() -> tuple[ModuleType, ModuleType]:
    """(thostmduserapi, thosttraderapi), imported only after the subprocess probe passed."""
    reason = _probe()
    if reason:
        raise CtpUnavailable(reason)
    from openctp_ctp import thostmduserapi, thosttraderapi

    return thostmduserapi, thosttraderapi
