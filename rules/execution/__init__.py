"""The Executor's pure state machine (see machine.py): inputs and effects in messages.py, the
durable state rebuilt from journal records in state.py.

The two names are loaded on first use (PEP 562): every actor's journal encoder imports
`rules.execution.seal`, and importing the package must not cost each of them the machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rules.execution.machine import ExecutionMachine
    from rules.execution.messages import ExecutionSettings

__all__ = ["ExecutionMachine", "ExecutionSettings"]


def __getattr__(name: str) -> Any:
    if name == "ExecutionMachine":
        from rules.execution.machine import ExecutionMachine

        return ExecutionMachine
    if name == "ExecutionSettings":
        from rules.execution.messages import ExecutionSettings

        return ExecutionSettings
    raise AttributeError(f"module 'rules.execution' has no attribute {name!r}")
