"""The picture of docs/pruning.md: a real small search over time, its trials rising through the rungs, paused, resumed,
pruned or finished, drawn from what its Trainer did.

    .venv/bin/python docs/search_over_time.py      # `make docs` runs it: docs/search-over-time.png (and .json)

Nine trials of a small BERT (4 layers, built from a config, MiniLM's tokenizer) on 640 rotten-tomatoes reviews, one
epoch each, hpsearch's defaults: rungs at 1/9 and 1/3 of a trial's training, successive halving that waits for peers.
Each training run of a trial (its first, and one per resume) is recorded by a callback: when it began and ended, and
how far its training was then; the study store says how and when each trial ended (a trial paused at a rung and
pruned there later, when its peers ranked it out, waited until then).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import transformers

import hpsearch
from hpsearch.loop.fidelity import PROGRESS_END, rung_points
from hpsearch.tools.demo import TextDataset, accuracy, minilm_dir, rotten_tomatoes

OUT = Path(__file__).resolve().parent / "search-over-time.png"
WAITED = 1.0  # seconds between a run's end and its trial's end, beyond which the trial waited paused
FATES = {  # how a training run ended: its colour and marker
    "paused": ("tab:orange", "|"),
    "pruned": ("tab:gray", "x"),
    "finished": ("tab:green", "o"),
}


class Runs(transformers.TrainerCallback):
    """Each training run: its trial, its start and end (seconds from the search's start), its progress then."""

    def __init__(self) -> None:
        self.began = time.time()  # the clock the study store's times are on
        self.runs: list[dict[str, Any]] = []

    def on_train_begin(self, args, state, control, **kwargs):
        trial = int(Path(args.output_dir).name.removeprefix("run-"))
        self.runs.append({"trial": trial, "start": self._now(), "from": self._progress(state)})

    def on_train_end(self, args, state, control, **kwargs):
        self.runs[-1].update(end=self._now(), to=self._progress(state))

    def _now(self) -> float:
        return time.time() - self.began

    @staticmethod
    def _progress(state: transformers.TrainerState) -> float:
        return state.global_step / max(state.max_steps, 1)


def search(output_dir: Path, n_trials: int) -> list[dict[str, Any]]:
    """Run the small search; its training runs, each with how it ended (`ended`)."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(minilm_dir())
    reviews = rotten_tomatoes()
    config = transformers.BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=512,
    )
    trainer = hpsearch.Trainer(
        model=None,
        args=transformers.TrainingArguments(
            str(output_dir), num_train_epochs=1, eval_strategy="epoch", report_to="none", disable_tqdm=True, seed=0
        ),
        train_dataset=TextDataset(tokenizer, reviews[:640]),
        eval_dataset=TextDataset(tokenizer, reviews[640:768]),
        processing_class=tokenizer,
        model_init=lambda: transformers.BertForSequenceClassification(config),
        compute_metrics=accuracy,
        data_collator=transformers.DataCollatorWithPadding(tokenizer),
    )
    runs = Runs()
    trainer.add_callback(runs)

    def hp_space(trial):
        return {
            "learning_rate": trial.suggest_float("learning_rate", 1e-5, 3e-3, log=True),
            "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [8, 16]),
        }

    trainer.hyperparameter_search(
        hp_space=hp_space, n_trials=n_trials, direction="maximize", seed=0, show_progress=False
    )
    ended = {t.number: (t.state.value, t.finished.timestamp() - runs.began) for t in hpsearch.load_trials(output_dir)}
    return ended_runs(runs.runs, ended)


def ended_runs(runs: list[dict[str, Any]], ended: dict[int, tuple[str, float]]) -> list[dict[str, Any]]:
    """Each run with how it ended: paused where its trial ran again later or was pruned later than the run ended
    (`pruned` then: when), else as its trial ended."""
    last = {run["trial"]: i for i, run in enumerate(runs)}
    for i, run in enumerate(runs):
        state, when = ended[run["trial"]]
        waited = state == "pruned" and when > run["end"] + WAITED
        run["fate"] = "paused" if last[run["trial"]] != i or waited else "finished" if state == "complete" else state
        run["pruned"] = when if last[run["trial"]] == i and waited else None
    return runs


def draw(runs: list[dict[str, Any]], path: Path) -> None:
    """A row per trial: its training runs as bars against wall time, each labelled with how far its training went
    and marked with how it ended; dotted while the trial waits paused at a rung."""
    import matplotlib.pyplot as plt

    trials = sorted({run["trial"] for run in runs})
    fig, ax = plt.subplots(figsize=(9, 0.42 * len(trials) + 1.4), dpi=120)
    for i, run in enumerate(runs):
        row, colour = run["trial"], f"C{run['trial'] % 10}"
        ax.plot([run["start"], run["end"]], [row, row], color=colour, lw=7, solid_capstyle="butt")
        ax.annotate(f"{run['to']:.0%}", (run["end"], row), xytext=(0, 6), textcoords="offset points", fontsize=7)
        later = [other for other in runs[i + 1 :] if other["trial"] == row]
        wait_until = later[0]["start"] if later else run["pruned"]
        if wait_until is not None:  # paused at its rung until it resumed, or until its peers ranked it out
            ax.plot([run["end"], wait_until], [row, row], ":", color=colour, lw=1.2)
        ax.plot(run["end"], row, FATES[run["fate"]][1], color=FATES[run["fate"]][0], ms=9, mew=2)
        if run["pruned"] is not None:
            ax.plot(run["pruned"], row, FATES["pruned"][1], color=FATES["pruned"][0], ms=9, mew=2)
    for fate, (colour, marker) in FATES.items():
        ax.plot([], [], marker, color=colour, ms=8, mew=2, label=fate, linestyle="none")
    ax.plot([], [], ":", color="black", lw=1.2, label="waiting at its rung")
    rungs = " and ".join(f"{rung / PROGRESS_END:.0%}" for rung in rung_points(3))
    ax.set(xlabel="wall time (s)", ylabel="trial", yticks=trials, ylim=(max(trials) + 0.8, min(trials) - 0.8))
    ax.set_title(f"A search of {len(trials)} trials over time; rungs at {rungs} of a trial's training", fontsize=10)
    ax.legend(loc="lower right", fontsize=8, frameon=False, ncol=4, bbox_to_anchor=(1, 1.06))
    ax.grid(axis="x", color="0.92")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="the picture (default: docs/search-over-time.png)")
    parser.add_argument("--trials", type=int, default=9)
    parser.add_argument("--runs", type=Path, help="draw the training runs a previous run saved (its .json), no search")
    args = parser.parse_args(argv)
    if args.runs:
        runs = json.loads(args.runs.read_text())
    else:
        with tempfile.TemporaryDirectory() as folder:
            runs = search(Path(folder), args.trials)
        args.out.with_suffix(".json").write_text(json.dumps(runs, indent=1) + "\n")
    draw(runs, args.out)
    counts = ", ".join(f"{sum(run['fate'] == fate for run in runs)} {fate}" for fate in FATES)
    print(f"{args.out}: {len({run['trial'] for run in runs})} trials, {len(runs)} training runs ending {counts}")


if __name__ == "__main__":
    main()
