"""Account events in: the account bus (clone pattern) and the simulated account population."""
