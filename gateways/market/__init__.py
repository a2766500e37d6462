"""Market data in: the simulated exchange and CSV tick replay, both publishing tick frames."""
