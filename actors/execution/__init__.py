"""The Executor's parts: state rebuilt from the journal, decisions, execution, watch loop."""
