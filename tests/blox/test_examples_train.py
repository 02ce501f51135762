"""Shortened end-to-end runs of the training examples: they train, save, and the checkpoint loads."""

import math
import pathlib

import jax
import numpy as np
import pytest

import blox as bx
from blox_inspect.load.model_file import load_model
from examples import train_char_lstm, train_digits

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


def test_digits_mlp_short_run_is_reproducible_and_its_checkpoint_evaluates(tmp_path):
    args = ["--model", "mlp", "--steps", "40", "--width", "32", "--batch-size", "32"]
    first = train_digits.main(args + ["--out", str(tmp_path / "a.safetensors")])
    second = train_digits.main(args + ["--out", str(tmp_path / "b.safetensors")])
    assert first["loss"] == second["loss"] and first["test_accuracy"] == second["test_accuracy"]
    assert first["test_accuracy"] > 0.6  # ten classes: chance is 0.1

    loaded = bx.load(first["checkpoint"])
    assert bx._checkpoint.read_header(first["checkpoint"]).tensors  # a real blox checkpoint
    assert not loaded["digits/mlp/bn/mean"].trainable
    # A freshly built model on the same graph names evaluates the loaded Params identically.
    _, x_test, _, y_test = train_digits.load_data("mlp")
    model = train_digits.build_model("mlp", 0.1, 32)
    assert train_digits.accuracy(model, loaded, x_test, y_test) == pytest.approx(first["test_accuracy"])


def test_digits_cnn_short_run(tmp_path):
    result = train_digits.main(
        ["--model", "cnn", "--steps", "60", "--width", "16", "--out", str(tmp_path / "cnn.safetensors")]
    )
    assert result["test_accuracy"] > 0.5
    loaded = bx.load(result["checkpoint"])
    assert loaded["digits/cnn/conv1/kernel"].value.shape == (3, 3, 1, 4)


def test_char_lstm_short_run_beats_the_uniform_loss_and_samples(tmp_path):
    out = tmp_path / "lm.safetensors"
    result = train_char_lstm.main(
        ["--steps", "25", "--hidden", "32", "--seq-len", "16", "--batch-size", "8", "--sample", "20", "--out", str(out)]
    )
    assert result["unigram_entropy"] < math.log(result["vocab"])
    assert np.isfinite(result["held_out_loss"]) and result["held_out_loss"] < math.log(result["vocab"])
    assert result["sample"].startswith("class ") and len(result["sample"]) == len("class ") + 20
    loaded = bx.load(out)
    assert loaded["charlm/model/lstm/kernel_h"].value.shape == (32, 128)


@pytest.mark.parametrize("name", ["train_digits.py", "train_char_lstm.py"])
def test_training_examples_are_inspectable_factories(name):
    loaded = load_model(str(EXAMPLES / name))
    params = loaded.abstract_params()
    assert all(isinstance(p.value, jax.ShapeDtypeStruct) for p in params.values())
    out = jax.eval_shape(lambda p, *x: loaded.apply(p, *x)[0], params, *loaded.abstract_inputs())
    assert jax.tree.leaves(out)[0].shape[-1] in (10, 96)
