"""`blox-inspect summary FOLDER/`: a Hugging Face model folder summarised from its config.json alone."""

import json

import pytest

from blox_inspect.cli import main

transformers = pytest.importorskip("transformers")


def test_summary_of_a_hf_folder_counts_what_the_reference_model_holds(tmp_path, capsys):
    import jax

    config = transformers.GPT2Config(vocab_size=100, n_positions=32, n_embd=32, n_layer=2, n_head=4)
    (tmp_path / "config.json").write_text(config.to_json_string())
    with jax.numpy_rank_promotion("allow"):  # the reference broadcasts implicitly
        reference = transformers.FlaxGPT2LMHeadModel(config, seed=0, _do_init=True)
    expected = sum(x.size for x in jax.tree.leaves(reference.params))  # tied head: wte counted once
    assert main(["summary", str(tmp_path), "--format", "json", "--no-xla"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["totals"]["trainable_params"] == expected
    assert any(m["path"].endswith("h/1/attn") for m in report["modules"])


def test_a_folder_with_an_unknown_architecture_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mamba"}))
    assert main(["summary", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path) in err and "mamba" in err
