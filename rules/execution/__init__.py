"""The Executor's pure state machine (see machine.py): inputs and effects in messages.py, the
durable state rebuilt from journal records in state.py."""

from rules.execution.machine import ExecutionMachine
from rules.execution.messages import ExecutionSettings

__all__ = ["ExecutionMachine", "ExecutionSettings"]
