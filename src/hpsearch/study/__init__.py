"""Internal: the study store (an optuna study) and everything written to it: the store and its keys
(`store`, `schema`), each trial's life (`lifecycle`), liveness, counts, continuity, warm start, the best model,
the disk paused trials take, the leaderboard. `hpsearch.load_trials` is the public way in."""
