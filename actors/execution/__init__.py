"""The Executor actor's plumbing: its settings, the account views it fetches from the shards,
its metrics. The logic is the pure machine in rules/execution/."""
