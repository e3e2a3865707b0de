"""hpsearch as a user installs it, from the wheel built from this checkout into fresh virtual environments:
with `[all]` and `hpsearch doctor --fix`, the seed's SigOpt and W&B examples from an empty folder (a tiny BERT
built there); and on the lowest and highest Python versions it declares, its import and function API."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
PIP = ("-m", "pip", "--disable-pip-version-check")
# pip's default byte-compiles every file it installs (torch's, Ray's, ...): a minute of the suite that tests nothing
# of hpsearch's; Python compiles what a script imports as it imports it
NO_COMPILE = "--no-compile"
IGNORED = shutil.ignore_patterns("__pycache__", "*.egg-info")

# The transformers docs' SigOpt and W&B spaces, as written there, on a tiny BERT made in the empty folder.
SEED_EXAMPLES = """
from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast, DataCollatorWithPadding
from transformers import TrainingArguments

from hpsearch import Trainer

words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "movie"]
with open("vocab.txt", "w") as f:
    f.write("\\n".join(words))
tokenizer = BertTokenizerFast("vocab.txt")
dataset = [{**tokenizer(text), "labels": label} for text, label in [("good movie", 1), ("bad movie", 0)] * 16]
config = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, num_labels=2)


def model_init(trial):
    return BertForSequenceClassification(config)


def sigopt_hp_space(trial):
    return [
        {"bounds": {"min": 1e-6, "max": 1e-4}, "name": "learning_rate", "type": "double"},
        {
            "categorical_values": ["16", "32", "64", "128"],
            "name": "per_device_train_batch_size",
            "type": "categorical",
        },
    ]


def wandb_hp_space(trial):
    return {
        "method": "random",
        "metric": {"name": "objective", "goal": "minimize"},
        "parameters": {
            "learning_rate": {"distribution": "uniform", "min": 1e-6, "max": 1e-4},
            "per_device_train_batch_size": {"values": [16, 32, 64, 128]},
        },
    }


for backend, hp_space in (("sigopt", sigopt_hp_space), ("wandb", wandb_hp_space)):
    trainer = Trainer(
        model=None,
        args=TrainingArguments(backend, num_train_epochs=1, eval_strategy="epoch", use_cpu=True),
        train_dataset=dataset,
        eval_dataset=dataset,
        tokenizer=tokenizer,
        model_init=model_init,
        data_collator=DataCollatorWithPadding(tokenizer),
    )
    best_trial = trainer.hyperparameter_search(direction="minimize", backend=backend, hp_space=hp_space, n_trials=2)
    print(backend, sorted(best_trial.hyperparameters))
"""


def run(*command: str | Path, cwd: Path) -> str:
    """Run `command` as a user's shell would: no PYTHONPATH to this checkout, W&B offline and keyless, and Python
    writing the bytecode of what it imports (a PYTHONDONTWRITEBYTECODE of the suite's would have each process of the
    fresh venv, which pip installed `--no-compile`, compile torch's, transformers', ... sources again: 10 s each)."""
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONPATH": ""}
    env.pop("WANDB_API_KEY", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


# what the wheel is built from besides `src/`: pyproject.toml, its `readme` and its `license-files`
WHEEL_FILES = ("pyproject.toml", "README.md", "LICENSE")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory, worker_id) -> Path:
    """hpsearch's wheel, built once per session (the test processes take turns) from a copy of this checkout's
    sources: setuptools builds in the tree's `build/`, where two builds at once collide and an old build's modules
    would go into the wheel."""
    session = tmp_path_factory.getbasetemp()
    session = session if worker_id == "master" else session.parent  # one folder for every test process
    with FileLock(session / "wheel.lock"):
        dist = session / "dist"
        if not dist.exists():
            source = session / "wheel-source"
            shutil.copytree(ROOT / "src", source / "src", ignore=IGNORED)
            for name in WHEEL_FILES:
                shutil.copy2(ROOT / name, source / name)
            run(sys.executable, *PIP, "wheel", "--no-deps", "--no-build-isolation", "-w", dist, source, cwd=session)
    (built,) = dist.glob("hpsearch-*.whl")
    return built


def declared_pythons() -> list[str]:
    """The lowest Python version pyproject.toml admits and the highest its classifiers name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lowest = re.fullmatch(r">=(3\.\d+)", project["requires-python"]).group(1)
    named = [c.rsplit(" :: ", 1)[1] for c in project["classifiers"] if re.fullmatch(r".*Python :: 3\.\d+", c)]
    return [lowest, max(named, key=lambda version: int(version.split(".")[1]))]


def test_the_wheel_installs_with_all_extras_and_the_doctor_fixes_what_pip_cannot(tmp_path, wheel):
    run(sys.executable, "-m", "venv", tmp_path / "venv", cwd=tmp_path)
    python, hpsearch = tmp_path / "venv" / "bin" / "python", tmp_path / "venv" / "bin" / "hpsearch"
    run(python, *PIP, "install", "-q", NO_COMPILE, "-c", ROOT / "constraints.txt", f"{wheel}[all]", cwd=tmp_path)

    before = run(hpsearch, "doctor", cwd=tmp_path)
    wandb = f'pip install "{wheel}[wandb]" && pip install --no-deps sweeps==0.3.0'  # pip takes the extra from the wheel
    assert f'missing  backend "wandb": {wandb}' in before
    assert 'missing  backend "sigopt": ' in before and "(or: hpsearch doctor --fix)" in before
    assert 'ok       backend "ray": ray ' in before and "ok       torch: 2.13.0" in before
    fixed = run(hpsearch, "doctor", "--fix", cwd=tmp_path)
    assert 'fix      backend "sigopt": installed sigoptlite==0.1.2 libsigopt==1.0.0 qmcpy==1.2 (--no-deps)' in fixed
    assert "missing" not in fixed, fixed

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "seed_examples.py").write_text(SEED_EXAMPLES)
    out = run(python, "seed_examples.py", cwd=empty)
    expected = "['learning_rate', 'per_device_train_batch_size']"
    assert f"sigopt {expected}" in out and f"wandb {expected}" in out


# what `import hpsearch` and the function API use (torch and transformers only the Trainer does)
FUNCTION_API = ["optuna", "numpy", "sqlalchemy", "filelock", "click", "cloudpickle", "psutil", "tqdm", "rich"]
SEARCH = """
import sys, hpsearch
from hpsearch.space import Float, Int
best = hpsearch.search(lambda t: (t.params["x"] - 1) ** 2 + t.params["n"], {"x": Float(-3.0, 3.0), "n": Int(0, 2)},
                       n_trials=12, output_dir="out", show_progress=False, seed=0)
trials = hpsearch.load_trials("out")
print(sys.version_info[:2], len(trials), best.objective == min(t.values[0] for t in trials), "torch" in sys.modules)
"""


@pytest.mark.parametrize("version", declared_pythons())
def test_each_declared_python_end_imports_hpsearch_and_runs_the_function_api(tmp_path, wheel, version):
    pythons = sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python3"))
    assert pythons, f"no Python {version} in ~/.pyenv/versions: `pyenv install {version}` brings it"
    run(pythons[-1], "-m", "venv", tmp_path / "venv", cwd=tmp_path)
    python = tmp_path / "venv" / "bin" / "python"
    run(python, *PIP, "install", "-q", NO_COMPILE, "-c", ROOT / "constraints.txt", *FUNCTION_API, cwd=tmp_path)
    run(python, *PIP, "install", "-q", NO_COMPILE, "--no-deps", wheel, cwd=tmp_path)
    out = run(python, "-c", SEARCH, cwd=tmp_path)
    major, minor = version.split(".")
    assert out.split() == [f"({major},", f"{minor})", "12", "True", "False"]
