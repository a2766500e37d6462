"""Reports from the journal alone, HTML and JSON: the daily operating-risk report (operating),
the replay reports (复盘), the closed-loop KPIs and the daily audit report (issue 8)."""
