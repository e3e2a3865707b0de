"""Where a search's trials run (Syne Tune's `TrialBackend`, Ray's trial executor), apart from what to try, which is
the backend's (`hpsearch.backends`: ask, tell, prune). An executor runs the search's loop (`loop.searchloop`: ask the
backend, run the trial, end it through `study.lifecycle.Trials`) wherever it places it, and owns the resources
those places share (`executors.resources`).

- `in_process`: the loop in this process;
- `ranks`: DDP, the loop on rank 0, each trial run on every rank (the others follow rank 0's word);
- `workers`: the loop in `n_jobs` worker processes on one machine, on the study's storage.

Where a backend's library places the trials itself (`Backend.placed_by`), its executor runs them through the same
loop (`base.placing`): `ray` (Ray Tune's trainables on its cluster) and `wandb_agent` (a W&B server's agent).
"""
