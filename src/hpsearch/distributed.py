"""Search under DDP (torchrun): rank 0 decides, every rank follows.

Only rank 0 talks to the backend and the study store. Every decision it takes is broadcast:
the search's settings, each trial's number and parameters, "prune (or pause) now" at each evaluation,
"search over" (or "search failed"). So all ranks train the same trial with the same arguments
and stop at the same step, however many trials are pruned, time out or fail. Other ranks
return None from `hyperparameter_search`, as in transformers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpsearch.errors import ConfigError, RankFailed
from hpsearch.trial import Decision, Trial


class Coordinator:
    """Broadcasts rank 0's decisions; each call is a collective that every rank makes in step."""

    def __init__(self) -> None:
        import torch.distributed as dist  # not at `import hpsearch`: the engine imports this module

        if not (dist.is_available() and dist.is_initialized()):
            raise ConfigError("A search over several processes needs torch.distributed initialised (torchrun).")
        self.rank = dist.get_rank()

    @property
    def leads(self) -> bool:
        return self.rank == 0

    def share(self, value: Any = None) -> Any:
        """Rank 0's `value`, on every rank."""
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def announce(self, number: int, params: dict[str, Any], native: Any, resume_from: str | None = None) -> None:
        """Tell the other ranks which trial runs next (`native`: what their `model_init` gets; `resume_from`:
        the checkpoint it continues from, if resumed)."""
        self.share(("trial", number, params, native, resume_from))

    def decide(self, decision: Decision | None) -> Decision:
        """Rank 0's `decision` on the trial's report, on every rank."""
        return self.share(decision)

    def finish(self, error: BaseException | None = None) -> None:
        self.share(("stop", None) if error is None else ("abort", f"{type(error).__name__}: {error}"))


def lead_definition(coordinator: Coordinator, portable_native: Callable[[], Any]) -> Callable[..., Any]:
    """Rank 0's `Trial.define`: build (`model_init`, which may suggest parameters of its own), then
    send every rank the trial's parameters and the trial object their `model_init` gets."""

    def define(trial: Trial, build: Callable[[Any], Any]) -> Any:
        try:
            built = build(trial.native)
        except BaseException as e:
            coordinator.share(("error", f"{type(e).__name__}: {e}"))
            raise
        coordinator.share(("defined", trial.params, portable_native()))
        return built

    return define


def _follow_definition(coordinator: Coordinator) -> Callable[..., Any]:
    """Another rank's `Trial.define`: build with the parameters rank 0 built with."""

    def define(trial: Trial, build: Callable[[Any], Any]) -> Any:
        message = coordinator.share()
        if message[0] == "error":
            raise RankFailed(f"The trial's model_init failed on rank 0: {message[1]}")
        _, trial.params, trial.native = message
        return build(trial.native)

    return define


def follow(coordinator: Coordinator, objective: Callable[[Trial], Any]) -> None:
    """A rank other than 0: run each trial rank 0 announces, until it says the search is over."""
    while True:
        message = coordinator.share()
        if message[0] == "stop":
            return
        if message[0] == "abort":
            raise RankFailed(f"The search stopped on rank 0: {message[1]}")
        _, number, params, native, resume_from = message
        trial = Trial(
            number, params, native, report=lambda step, value: coordinator.decide(None), resume_from=resume_from
        )
        trial.sync_definition = _follow_definition(coordinator)
        try:
            objective(trial)
        except Exception:  # rank 0 records the trial's failure; follow it to the next trial
            continue
