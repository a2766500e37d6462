"""Operator HTTP endpoint: acknowledgements, provider callbacks and the alert list."""

from gateways.operator_http.links import sign_link, verify_link
from gateways.operator_http.server import OperatorBackend, OperatorServer, UnknownAlert

__all__ = ["OperatorBackend", "OperatorServer", "UnknownAlert", "sign_link", "verify_link"]
