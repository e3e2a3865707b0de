"""A LoRA search with peft: the adapter's rank and scaling searched with the learning rate.

    pip install ".[lora]"       # peft, from this checkout
    python examples/lora.py

`model_init(trial)` reads the trial's rank and alpha to build the adapter: parameters that are not
`TrainingArguments` fields reach the model this way (transformers' search skips them with a warning).
"""

from peft import LoraConfig, TaskType, get_peft_model
from transformers import AutoModelForSequenceClassification

from hpsearch.tools.demo import minilm_dir, review_trainer, size_parser


def hp_space(trial):
    return {
        "learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-3, log=True),
        "lora_r": trial.suggest_categorical("lora_r", [4, 8, 16]),
        "lora_alpha": trial.suggest_categorical("lora_alpha", [8, 16, 32]),
    }


def model_init(trial):
    params = trial.params if trial is not None else {"lora_r": 8, "lora_alpha": 16}
    model = AutoModelForSequenceClassification.from_pretrained(minilm_dir(), num_labels=2)
    rank, alpha = params["lora_r"], params["lora_alpha"]
    adapter = LoraConfig(task_type=TaskType.SEQ_CLS, r=rank, lora_alpha=alpha, target_modules=["query", "value"])
    return get_peft_model(model, adapter)


if __name__ == "__main__":
    args = size_parser(__doc__, "runs/lora").parse_args()
    trainer = review_trainer(args, model_init=model_init)
    best_run = trainer.hyperparameter_search(
        direction="maximize",
        hp_space=hp_space,
        n_trials=args.trials,
        compute_objective=lambda metrics: metrics["eval_accuracy"],
    )
    print(f"best run {best_run.run_id}: accuracy {best_run.objective:.4f}, {best_run.hyperparameters}")
