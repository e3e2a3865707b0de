"""`hpsearch.trainer.arguments`: which parameters are `TrainingArguments` fields and their types, the checks of a space
before any training (values a field cannot take, keys nothing reads), the warning after the first trial's model
when it does not show a searched value, and casting a trial's values to their fields' types."""

from __future__ import annotations

import dataclasses
import logging
import math
from types import SimpleNamespace

import pytest
import transformers
from transformers import BertConfig

from hpsearch.errors import ConfigError
from hpsearch.space import Categorical, Float, Int
from hpsearch.trainer.arguments import argument_types, cast, check_params, typed, warn_unread


def model_init_with_trial(trial):
    return None


def model_init_without_trial():
    return None


def test_the_argument_types_are_the_training_arguments_a_user_can_pass_each_with_its_type():
    types = argument_types()
    passable = {f.name for f in dataclasses.fields(transformers.TrainingArguments) if f.init}
    assert set(types) == passable
    assert types["learning_rate"] is float and types["per_device_train_batch_size"] is int
    assert types["fp16"] is bool
    assert argument_types() is types  # read once
    assert types["output_dir"] == str | None and types["lr_scheduler_type"] is not str  # as transformers hints them


@pytest.mark.parametrize(
    "space",
    [
        {"learning_rate": Float(1e-5, 1e-3, log=True), "per_device_train_batch_size": Int(8, 32)},
        {"per_device_train_batch_size": Categorical(["16", 32, 64.0])},  # whole numbers, as SigOpt's strings too
        {"fp16": Categorical([True, False, "no", 1]), "bf16": Int(0, 1)},
        {"num_train_epochs": Int(1, 5), "weight_decay": Categorical([0, "0.01"])},  # ints where floats go
        {"run_name": Categorical([1, "a"]), "lr_scheduler_type": Categorical(["linear", "cosine"])},
        {"learning_rate": None},  # a field whose values the backend's own space keeps
    ],
)
def test_values_each_field_can_take_pass_the_check(space):
    check_params(space, model_init_without_trial)


@pytest.mark.parametrize(
    ("space", "says"),
    [
        ({"per_device_train_batch_size": Float(8.0, 32.0)}, r"samples 'per_device_train_batch_size' as a float"),
        ({"gradient_accumulation_steps": Categorical([1, 2.5])}, r"gives 'gradient_accumulation_steps' the value 2.5"),
        ({"seed": Categorical([1, "one"])}, r"gives 'seed' the value 'one'.*Give it int values"),
        ({"fp16": Int(0, 2)}, r"gives 'fp16' the value 2.*Give it bool values"),
        ({"fp16": Float(0.0, 1.0)}, r"gives 'fp16' the value 0.0"),
        ({"fp16": Categorical(["maybe"])}, r"gives 'fp16' the value 'maybe'"),
        ({"learning_rate": Categorical(["fast"])}, r"gives 'learning_rate' the value 'fast'"),
    ],
)
def test_values_a_field_cannot_take_are_a_config_error_before_training(space, says):
    with pytest.raises(ConfigError, match=says):
        check_params(space, model_init_with_trial)


def test_a_key_no_field_has_needs_a_model_init_that_takes_the_trial(caplog):
    space = {"learning_rate": Float(1e-5, 1e-3), "hidden_dropout_prob": Float(0.0, 0.3)}
    with pytest.raises(ConfigError, match=r"\['hidden_dropout_prob'\] are not `TrainingArguments` fields"):
        check_params(space, model_init_without_trial)
    with caplog.at_level(logging.INFO, logger="hpsearch.trainer.arguments"):
        check_params(space, model_init_with_trial)
    (record,) = caplog.records
    assert record.levelno == logging.INFO  # a model hyperparameter, as meant
    assert (
        record.message
        == "hp_space key(s) ['hidden_dropout_prob'] are model hyperparameters: `model_init(trial)` must read them."
    )


def test_a_key_close_to_a_field_is_a_warning_with_the_field_and_without_a_trial_an_error(caplog):
    space = {"weight_decai": Float(0.0, 0.1)}
    with caplog.at_level(logging.INFO, logger="hpsearch.trainer.arguments"):
        check_params(space, model_init_with_trial)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "Did you mean 'weight_decay' for 'weight_decai'?" in record.message
    with pytest.raises(ConfigError, match="Did you mean 'weight_decay' for 'weight_decai'"):
        check_params(space, model_init_without_trial)


def test_a_space_of_fields_only_says_nothing(caplog):
    with caplog.at_level(logging.DEBUG, logger="hpsearch.trainer.arguments"):
        check_params({"learning_rate": Float(1e-5, 1e-3)}, model_init_without_trial)
    assert caplog.records == []


def a_model(**config) -> SimpleNamespace:
    return SimpleNamespace(config=BertConfig(**config))


def test_a_searched_value_the_model_shows_or_a_field_warns_of_nothing(caplog):
    with caplog.at_level(logging.DEBUG, logger="hpsearch.trainer.arguments"):
        warn_unread({"hidden_dropout_prob": 0.2, "learning_rate": 1e-3}, a_model(hidden_dropout_prob=0.2))
        warn_unread({"num_hidden_layers": "3"}, a_model(num_hidden_layers=3))  # SigOpt's "3": the same value
        warn_unread({"hidden_dropout_prob": 0.2}, SimpleNamespace())  # no config to look in
        warn_unread({"hidden_dropout_prob": 0.2}, None)
    assert caplog.records == []


def test_a_searched_value_the_model_does_not_show_is_a_warning_naming_both_values(caplog):
    with caplog.at_level(logging.WARNING, logger="hpsearch.trainer.arguments"):
        warn_unread({"hidden_dropout_prob": 0.23}, a_model())
    (record,) = caplog.records
    assert "config.hidden_dropout_prob=0.1, not the trial's 0.23" in record.message
    assert "from_pretrained(..., hidden_dropout_prob=trial.params['hidden_dropout_prob'])" in record.message


def test_a_searched_key_nowhere_is_a_warning_with_the_closest_config_key(caplog):
    with caplog.at_level(logging.WARNING, logger="hpsearch.trainer.arguments"):
        warn_unread({"classifier_dropout_rate": 0.1, "zzz_unknown": 1}, a_model())
    first, second = (r.message for r in caplog.records)
    assert "'classifier_dropout_rate', which is neither a `TrainingArguments` field nor in the model's config" in first
    assert "(BertConfig)" in first and first.endswith("Did you mean the config's 'classifier_dropout'?")
    assert "'zzz_unknown'" in second and "Did you mean" not in second


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("per_device_train_batch_size", "16", 16),
        ("per_device_train_batch_size", 16.0, 16),
        ("per_device_train_batch_size", " 32 ", 32),
        ("learning_rate", "1e-3", 1e-3),
        ("learning_rate", 1, 1.0),
        ("fp16", "True", True),
        ("fp16", " no ", False),
        ("fp16", "1", True),
        ("fp16", 0, False),
        ("fp16", False, False),
        ("run_name", 7, "7"),
        ("lr_scheduler_type", "cosine", "cosine"),  # a richer type: as it is
        ("report_to", ["none"], ["none"]),
        ("per_device_train_batch_size", None, None),
    ],
)
def test_a_trial_value_is_cast_to_its_fields_type(name, value, expected):
    result = cast(name, value)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("per_device_train_batch_size", 16.5, "is not a whole number"),
        ("per_device_train_batch_size", "16.5", "is not a whole number"),
        ("per_device_train_batch_size", math.nan, "is not a whole number"),
        ("per_device_train_batch_size", math.inf, "is not a whole number"),
        ("per_device_train_batch_size", "sixteen", "could not convert"),
        ("fp16", 2, "2 is not a boolean"),
        ("fp16", 1.0, "1.0 is not a boolean"),
        ("fp16", "maybe", "'maybe' is not a boolean"),
    ],
)
def test_a_value_its_field_cannot_take_unchanged_is_a_value_error(name, value, says):
    with pytest.raises(ValueError, match=says):
        cast(name, value)


def test_typed_params_cast_the_fields_and_keep_model_hyperparameters_as_they_are():
    params = {"per_device_train_batch_size": "16", "learning_rate": "0.01", "fp16": "false", "dropout": "0.1"}
    assert typed(params) == {"per_device_train_batch_size": 16, "learning_rate": 0.01, "fp16": False, "dropout": "0.1"}
    fields = {name: value for name, value in typed(params).items() if name != "dropout"}
    arguments = transformers.TrainingArguments(output_dir="unused", **fields)
    assert (arguments.per_device_train_batch_size, arguments.learning_rate, arguments.fp16) == (16, 0.01, False)
    assert typed({}) == {}
