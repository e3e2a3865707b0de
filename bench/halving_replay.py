"""What a rule for the last rung would change, replayed on real trials: more than one finisher when the budget is
small, and a clear leader going on before its nine peers.

At 8 trials hpsearch's last rung (1/3 of training) never has the nine peers it waits for, so when no trial is left to
start the best trial there runs to the end and the others paused there are pruned: one finisher, at the search's end.
Would letting more of them finish (the best two, or each within the rung's noise of the leader) find a better final
point, and at what cost? Would promoting a trial that leads the rung's three or more peers by more than the rung's
noise (PASHA's idea: go on where the ranking is clear, Bohdal et al. 2023) bring the final answer sooner?

The real trials of `bench/rung_signals.py` (random points of the docs' space, each trained to the end and scored on
every evaluation example at 1/9 and 1/3 of its training and at the end) stand for the training. Each replay draws
`n_trials` of them in a random order and a rung subset of `--subset` evaluation examples, and runs hpsearch's rule
(`hpsearch.loop.decision`'s `verdict` and `leads_clearly`, one trial at a time, paused trials judged again before
each new one, then settled by the peers they have) with the last rung changed as each variant says. A variant is
scored by the training it costs (in whole trials; a trial run to the end is 1) and the final accuracy it ends with,
against the best final accuracy among the same points (what a search running every trial to the end finds), and by
the training spent until its best final accuracy was first reached (the time to its answer, one trial at a time).

    .venv/bin/python bench/halving_replay.py bench/rung_signals-tweets.json --trials 8 --replays 2000  # and --trials 20
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpsearch.loop.decision import leads_clearly, peers_to_wait_for, verdict
from hpsearch.loop.fidelity import PROGRESS_END, REDUCTION_FACTOR, rung_points
from hpsearch.trial import Decision

RUNGS = rung_points(3)  # 1/9 and 1/3: the default
LAST = max(RUNGS)

# A variant: whether a trial the settled last rung prunes runs to the end after all, given its and every peer's
# per-example losses there (trial number -> losses on the rung's subset).
Variant = Callable[[int, dict[int, list[float]]], bool]


def best_two(trial: int, losses: dict[int, list[float]]) -> bool:
    return sorted(losses, key=lambda t: statistics.fmean(losses[t])).index(trial) < 2


def within_noise(trial: int, losses: dict[int, list[float]]) -> bool:
    """Within one standard error of the leader's mean loss, the error of the per-example differences (paired)."""
    leader = min(losses, key=lambda t: statistics.fmean(losses[t]))
    differences = [mine - best for mine, best in zip(losses[trial], losses[leader], strict=True)]
    return statistics.fmean(differences) <= statistics.stdev(differences) / math.sqrt(len(differences))


def clear_leader(trial: int, losses: dict[int, list[float]]) -> bool:
    """hpsearch's promotion test (`leads_clearly`, `promote_leaders=True`), each score's standard error its own
    evaluation's."""

    def scored(t: int) -> tuple[float, float]:
        return statistics.fmean(losses[t]), statistics.stdev(losses[t]) / math.sqrt(len(losses[t]))

    return leads_clearly(scored(trial), [scored(t) for t in losses if t != trial], maximize=False)


never: Variant = lambda trial, losses: False  # noqa: E731
# name -> (how the settled last rung ends, whether a leader there goes on before its nine peers)
RULES: dict[str, tuple[Variant, Variant]] = {
    "waits for nine peers (hpsearch's rule)": (never, never),
    "the best two": (best_two, never),
    "each within the rung's noise of the leader": (within_noise, never),
    "a clear leader goes on at once (promote_leaders=True)": (never, clear_leader),
}


class Replay:
    """One search of `order` (indices of `trials`) under hpsearch's rule, its last rung settled as `variant` says
    and a leader there promoted before its nine peers where `promote` says."""

    def __init__(
        self, trials: list[dict[str, Any]], order: list[int], subset: list[int], variant: Variant, promote: Variant
    ):
        self.trials, self.order, self.subset, self.variant, self.promote = trials, order, subset, variant, promote
        self.scores: dict[int, dict[int, list[float]]] = {rung: {} for rung in RUNGS}  # rung -> trial -> losses
        self.paused: dict[int, int] = {}  # trial -> its rung
        self.finished: dict[int, float] = {}  # trial -> the training spent when it ended
        self.cost = 0.0  # trials' training, in whole trials

    def run(self) -> tuple[float, float, int, float]:
        """The best final accuracy, the training spent, how many trials ran to the end, and the training spent until
        the best final accuracy was first reached."""
        for trial in self.order:
            while self._resume(settling=False):
                pass
            self._advance(trial, 0, settling=False)
        while self._resume(settling=True):
            pass
        best = max(accuracy(self.trials[t]) for t in self.finished)
        reached = min(cost for t, cost in self.finished.items() if accuracy(self.trials[t]) == best)
        return best, self.cost, len(self.finished), reached

    def _decide(self, trial: int, rung: int, settling: bool) -> Decision:
        peers = {t: statistics.fmean(losses) for t, losses in self.scores[rung].items()}
        wait_for = 0 if settling else peers_to_wait_for(rung, RUNGS, REDUCTION_FACTOR)
        decision = verdict(list(peers.values()), peers[trial], False, REDUCTION_FACTOR, wait_for)
        if settling and rung == LAST and decision is Decision.PRUNE and self.variant(trial, self.scores[rung]):
            return Decision.CONTINUE
        early = not settling and rung == LAST and len(peers) >= REDUCTION_FACTOR
        if early and decision is Decision.PAUSE and self.promote(trial, self.scores[rung]):
            return Decision.CONTINUE
        return decision

    def _advance(self, trial: int, start: int, settling: bool) -> None:
        """Train `trial` from progress `start` to its next stop: a pause, a prune or the end."""
        for point in [*[rung for rung in RUNGS if rung > start], PROGRESS_END]:
            self.cost += (point - start) / PROGRESS_END
            start = point
            if point == PROGRESS_END:
                self.finished[trial] = self.cost
                return
            losses = self.trials[trial]["rungs"][str(point)]["loss"]
            self.scores[point][trial] = [losses[i] for i in self.subset]
            decision = self._decide(trial, point, settling)
            if decision is Decision.PAUSE:
                self.paused[trial] = point
            if decision is not Decision.CONTINUE:
                return

    def _resume(self, settling: bool) -> bool:
        """Resume the first paused trial its rung promotes now, pruning those it never will; False if none."""
        for trial, rung in sorted(self.paused.items()):
            decision = self._decide(trial, rung, settling)
            if decision is not Decision.PAUSE:
                del self.paused[trial]
            if decision is Decision.CONTINUE:
                self._advance(trial, rung, settling)
                return True
        return False


def accuracy(trial: dict[str, Any]) -> float:
    return statistics.fmean(trial["final"]["correct"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a bench/rung_signals.py results file")
    parser.add_argument("--trials", type=int, default=8, help="trials per search")
    parser.add_argument("--replays", type=int, default=2000)
    parser.add_argument("--subset", type=int, default=128, help="evaluation examples a rung scores")
    args = parser.parse_args(argv)
    results = json.loads(Path(args.results).read_text())
    trials, rng = results["trials"], random.Random(0)
    eval_size = results["settings"]["eval_size"]
    draws = [
        (rng.sample(range(len(trials)), args.trials), rng.sample(range(eval_size), args.subset))
        for _ in range(args.replays)
    ]
    example = 1 / eval_size
    print(f"{results['settings']}, {args.trials} trials a search, {args.replays} replays, rungs at {RUNGS}")
    print(
        "| last rung | training (trials) | to its answer (trials) | trials to the end "
        "| points below the same points' best (mean) | searches that end at it | within one evaluation example |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, (variant, promote) in RULES.items():
        runs = [
            (Replay(trials, order, subset, variant, promote).run(), max(accuracy(trials[t]) for t in order))
            for order, subset in draws
        ]
        gaps = [best_all - best for (best, *_), best_all in runs]
        print(
            f"| {name} | {statistics.fmean(cost for (_, cost, _, _), _ in runs):.2f} of {args.trials} | "
            f"{statistics.fmean(reached for (*_, reached), _ in runs):.2f} | "
            f"{statistics.fmean(ended for (_, _, ended, _), _ in runs):.2f} | {100 * statistics.fmean(gaps):.2f} | "
            f"{sum(gap <= 1e-9 for gap in gaps) / len(gaps):.1%} | "
            f"{sum(gap <= example + 1e-9 for gap in gaps) / len(gaps):.1%} |"
        )


if __name__ == "__main__":
    main()
