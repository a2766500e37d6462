"""Simulations and local stand-ins for outside parties, so `make run` and tests never leave the
machine: the exchange, the accounts, the order gateway, and the Twilio/WeCom/SMTP providers.

Each fake speaks the wire format of the real edge it stands in for and names it in its docstring.
"""
