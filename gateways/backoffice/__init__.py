"""Back-office files (the daily accounts, positions and fund flows a settlement system exports)
onto the account bus: `loader` reads and judges them, `watch` picks them up from a folder."""
