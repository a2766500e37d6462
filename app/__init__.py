"""The application layer: commands and wiring that may import every other layer."""
