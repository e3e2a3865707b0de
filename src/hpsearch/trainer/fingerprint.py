"""What a Trainer search runs on, its data and its fixed `TrainingArguments`, described so that a rerun of the
study on other ones is told before its first trial (users reuse `output_dir`; the earlier trials would then be
compared with trials of another task)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import transformers

# TrainingArguments that do not change what a trial scores: where it writes, what it shows, how it is logged.
_NOT_SCORED = {
    *("output_dir", "logging_dir", "run_name", "report_to", "disable_tqdm", "overwrite_output_dir"),
    *("logging_strategy", "logging_steps", "logging_first_step", "logging_nan_inf_filter", "log_level"),
    *("log_level_replica", "log_on_each_node", "save_strategy", "save_steps", "save_total_limit", "save_on_each_node"),
    *("push_to_hub", "hub_model_id", "hub_strategy", "hub_private_repo", "hub_always_push", "hub_revision"),
    *("dataloader_num_workers", "dataloader_persistent_workers", "dataloader_prefetch_factor", "local_rank"),
}
_HASHED = 5000  # examples hashed per dataset: all of a smaller one, else this many evenly spaced (a quarter second)


def describe_setup(trainer: transformers.Trainer, searched: Iterable[str]) -> dict[str, str]:
    """The training and evaluation sets (size and a fingerprint of their content) and every `TrainingArguments`
    value that is not `searched` and can change a trial's score, as name -> description."""
    facts = {"train_dataset": describe_dataset(trainer.train_dataset)}
    evaluation = trainer.eval_dataset
    named = evaluation.items() if isinstance(evaluation, dict) else [("", evaluation)]
    facts.update({f"eval_dataset{f'[{name!r}]' if name else ''}": describe_dataset(data) for name, data in named})
    skipped = {*searched, *_NOT_SCORED}
    for name, value in sorted(trainer.args.to_dict().items()):
        if name not in skipped and "token" not in name:  # a hub token is a secret, and scores nothing
            facts[f"TrainingArguments.{name}"] = repr(value)
    return facts


def describe_dataset(dataset: Any) -> str:
    """Its size and a hash of its examples ("600 examples, content 3f2a..."; of a large set, evenly spaced ones):
    a resized or edited set is told apart."""
    if dataset is None:
        return "none"
    try:
        size = len(dataset)
    except TypeError:
        return f"a {type(dataset).__name__} of unknown size"
    picks = range(size) if size <= _HASHED else sorted({i * size // _HASHED for i in range(_HASHED)})
    try:
        examples = repr([dataset[i] for i in picks])
    except Exception:  # a dataset that cannot be indexed by position: its size only
        return f"{size} examples"
    return f"{size} examples, content {hashlib.sha256(examples.encode()).hexdigest()[:12]}"
