"""The rule engine: rules as data, one module per kind, vectorized evaluation, composite
matching, alert hygiene and the backtest — pure (numpy and stdlib), so the live actors and the
backtest run the same code."""
