"""Local stand-ins for outside providers, so `make run` and tests never leave the machine."""
