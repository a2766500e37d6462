"""The application layer (composition root): the CLI, the demo and the supervisor.

It is the only package that wires actors, gateways and infra together; nothing below imports it.
"""
