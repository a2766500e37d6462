"""CTP tests drive the real openctp-ctp structs and SPI subclasses without a network; they skip,
with the reason, only where the library cannot load (not installed, or no zh_CN.GB18030)."""

from __future__ import annotations

import pytest

from gateways import ctp

REASON = ctp.unavailable_reason()
needs_ctp = pytest.mark.skipif(bool(REASON), reason=f"CTP library cannot load: {REASON}")


@pytest.fixture(scope="session")
def apis():
    if REASON:
        pytest.skip(f"CTP library cannot load: {REASON}")
    return ctp.load()


def fill(struct, **values):
    for key, value in values.items():
        setattr(struct, key, value)
    return struct


@pytest.fixture
def rsp(apis):
    """rsp(code, msg) -> a real CThostFtdcRspInfoField (code 0: success)."""
    _, td = apis

    def make(code: int = 0, msg: str = "") -> object:
        return fill(td.CThostFtdcRspInfoField(), ErrorID=code, ErrorMsg=msg)

    return make
