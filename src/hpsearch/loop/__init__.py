"""Internal: the engine's loop (`searchloop`) and what it decides: each report's `Decision` (`decision`,
with the rung ladder of `fidelity` and the peers' halving of `halving`), the failure policy (`failures`), the
progress bar (`progress`)."""
