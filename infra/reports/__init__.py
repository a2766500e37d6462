"""Replay reports (复盘), KPIs and the daily audit report, computed from the journal alone."""
