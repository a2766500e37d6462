"""Orders out: the simulated order gateway that fills, refuses and reports."""
