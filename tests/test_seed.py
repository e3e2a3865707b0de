"""The seed document's optuna example, run as written (`tokenizer=` included) on the tiny task."""

from __future__ import annotations

import hpsearch
from hpsearch import Trainer, TrialState


def test_seed_optuna_example_runs_as_written(tiny_model_dir, tokenizer, train_dataset, eval_dataset, tmp_path):
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, TrainingArguments

    from tests.conftest import compute_metrics

    training_args = TrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=1, report_to="none", disable_tqdm=True, use_cpu=True
    )
    small_train_dataset, small_eval_dataset = train_dataset, eval_dataset
    data_collator = DataCollatorWithPadding(tokenizer)

    def compute_objective(metrics):
        return metrics["eval_accuracy"]

    # From here on, the seed's code.
    def optuna_hp_space(trial):
        return {
            "learning_rate": trial.suggest_float("learning_rate", 1e-6, 1e-4, log=True),
            "per_device_train_batch_size": trial.suggest_categorical("per_device_train_batch_size", [16, 32, 64, 128]),
        }

    def model_init(trial):
        return AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, num_labels=2)

    trainer = Trainer(
        model=None,
        args=training_args,
        train_dataset=small_train_dataset,
        eval_dataset=small_eval_dataset,
        compute_metrics=compute_metrics,
        tokenizer=tokenizer,
        model_init=model_init,
        data_collator=data_collator,
    )

    best_trial = trainer.hyperparameter_search(
        direction="maximize",
        backend="optuna",
        hp_space=optuna_hp_space,
        n_trials=5,
        compute_objective=compute_objective,
    )

    assert trainer.processing_class is tokenizer
    trials = hpsearch.load_trials(tmp_path)
    assert len(trials) == 5 and {t.state for t in trials} <= {TrialState.COMPLETE, TrialState.PRUNED}  # at rungs
    assert len({t.params["learning_rate"] for t in trials}) == 5  # args.seed fixed, yet 5 points searched
    assert set(best_trial.hyperparameters) == {"learning_rate", "per_device_train_batch_size"}
    assert best_trial.objective == max(t.objective for t in trials if t.state is TrialState.COMPLETE)
    assert best_trial.run_id in {str(t.number) for t in trials}
    assert 0.0 <= best_trial.objective <= 1.0
