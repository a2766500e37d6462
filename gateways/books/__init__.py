"""Operating inputs of the exposure books: inventory, physical contracts and spot prices, from
files dropped in a watched folder (CSV, JSON, JSON Lines) and from a ZeroMQ topic."""
