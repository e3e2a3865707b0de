"""`trainer.fingerprint`: a Trainer search's data and fixed arguments, described so that a rerun on others is told."""

from __future__ import annotations

from hpsearch.trainer.fingerprint import describe_dataset, describe_setup


def test_a_dataset_is_told_apart_by_its_size_and_its_content():
    first = describe_dataset([{"x": 1}, {"x": 2}])
    assert first.startswith("2 examples, content ")
    assert describe_dataset([{"x": 1}, {"x": 2}]) == first
    assert describe_dataset([{"x": 1}, {"x": 3}]) != first  # an edited example
    assert describe_dataset([{"x": 1}]).startswith("1 examples")


def test_a_large_dataset_is_hashed_at_evenly_spaced_examples_and_an_edit_there_shows():
    data = list(range(20_000))
    edited = [*data[:-4], -1, *data[-3:]]  # the 5000th evenly spaced pick is 19996
    assert describe_dataset(data) != describe_dataset(edited)


def test_what_cannot_be_hashed_is_described_by_what_is_known():
    class Unsized:
        pass

    class Unindexed:
        def __len__(self):
            return 7

        def __getitem__(self, index):
            raise KeyError(index)

    assert describe_dataset(None) == "none"
    assert describe_dataset(Unsized()) == "a Unsized of unknown size"
    assert describe_dataset(Unindexed()) == "7 examples"


def test_a_setup_holds_the_data_and_every_scoring_argument_not_searched_nor_secret(make_trainer):
    trainer = make_trainer(learning_rate=1e-3, hub_token="secret", logging_steps=3)
    facts = describe_setup(trainer, ["learning_rate"])
    assert facts["train_dataset"].startswith(f"{len(trainer.train_dataset)} examples, content ")
    assert "eval_dataset" in facts and "TrainingArguments.weight_decay" in facts
    assert "TrainingArguments.learning_rate" not in facts  # searched
    assert "TrainingArguments.logging_steps" not in facts  # does not change a score
    assert not any("token" in name for name in facts) and "secret" not in repr(facts)
