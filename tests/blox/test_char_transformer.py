"""End to end: the character-level Transformer example, shortened."""

import json
import struct

import numpy as np

import blox as bx
from examples.train_char_transformer import main


def user_metadata(path):
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(size))["__metadata__"]


def test_char_transformer_trains_below_unigram_entropy_saves_and_samples(tmp_path, capsys):
    argv = [
        "--steps",
        "150",
        "--width",
        "32",
        "--layers",
        "1",
        "--heads",
        "2",
        "--seq-len",
        "32",
        "--batch",
        "16",
        "--eval-batches",
        "2",
        "--sample-len",
        "40",
        "--prompt",
        "def ",
        "--out",
        str(tmp_path),
    ]
    result = main(argv)
    out = capsys.readouterr().out
    assert f"unigram entropy {result['unigram']:.3f} nats" in out
    assert np.isfinite(result["final_loss"])
    assert result["start_loss"] > result["unigram"] > result["final_loss"] + 0.2
    params = bx.load(result["checkpoint"])
    assert params["char/model/blocks/block/attn/query/kernel"].value.shape == (1, 32, 32)
    assert int(params["char/model/rng/counter"].value) > 150  # dropout drew fresh keys every step
    vocab = json.loads(user_metadata(result["checkpoint"])["vocab"])
    sample = result["sample"]
    assert sample.startswith("def ") and len(sample) == 44
    assert set(sample) <= set(vocab)
