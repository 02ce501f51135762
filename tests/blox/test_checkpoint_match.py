"""When a checkpoint meets a model, every difference is reported at once, with the nearest name."""

import jax
import jax.numpy as jnp
import pytest

import blox as bx


def _sds(shape, dtype=jnp.float32):
    return bx.Param(jax.ShapeDtypeStruct(shape, dtype))


def _checkpoint():
    return bx.Params(
        {
            ("net", "attn", "query", "kernel"): bx.Param(jnp.ones((4, 4))),
            ("net", "mlp", "fc1", "kernel"): bx.Param(jnp.ones((4, 8))),
            ("net", "mlp", "fc2", "kernel"): bx.Param(jnp.ones((8, 4))),
            ("net", "norm", "scale"): bx.Param(jnp.ones(4)),
            ("net", "old", "bias"): bx.Param(jnp.ones(3)),
            ("net", "rng", "seed"): bx.Param(jax.random.key(0), trainable=False),
        }
    )


def _model():
    return bx.Params(
        {
            ("net", "attention", "query", "kernel"): _sds((4, 4)),  # renamed
            ("net", "mlp", "fc1", "kernel"): _sds((8, 4)),  # transposed: fc2's shape
            ("net", "mlp", "fc2", "kernel"): _sds((8, 4)),
            ("net", "norm", "scale"): _sds((4,), jnp.bfloat16),
            ("net", "rng", "seed"): bx.Param(jax.eval_shape(lambda: jax.random.key(0))),
        }
    )


def test_match_report_lists_every_kind_with_the_nearest_name():
    report = bx.match_report(_checkpoint(), _model())
    got = [
        (m.kind, bx.path_str(m.path), m.checkpoint, m.model, m.nearest and bx.path_str(m.nearest))
        for m in report.problems
    ]
    assert got == [
        ("missing", "net/attention/query/kernel", None, "float32[4, 4]", "net/attn/query/kernel"),
        ("unexpected", "net/attn/query/kernel", "float32[4, 4]", None, "net/attention/query/kernel"),
        ("unexpected", "net/old/bias", "float32[3]", None, None),
        ("shape", "net/mlp/fc1/kernel", "float32[4, 8]", "float32[8, 4]", "net/mlp/fc2/kernel"),
        ("dtype", "net/norm/scale", "float32[4]", "bfloat16[4]", None),
    ]
    assert (report.checkpoint_count, report.model_count) == (6, 5) and report
    assert not bx.match_report(_checkpoint(), _checkpoint())


def test_load_like_reports_all_problems_in_one_error(tmp_path):
    f = tmp_path / "m.safetensors"
    bx.save(f, _checkpoint())
    with pytest.raises(bx.CheckpointError) as e:
        bx.load(f, like=_model())
    lines = str(e.value).splitlines()
    assert lines[0] == (
        f"{f}: does not match the model: 1 missing in the checkpoint, 2 in the checkpoint, not in the model, "
        "1 with another shape, 1 with another dtype (6 params in the checkpoint, 5 in the model)."
    )
    assert lines[1:6] == [
        "  missing: net/attention/query/kernel: the model needs float32[4, 4], the checkpoint has no such param "
        "(nearest: the checkpoint has net/attn/query/kernel float32[4, 4])",
        "  unexpected: net/attn/query/kernel: the checkpoint has float32[4, 4], the model has no such param "
        "(nearest: the model has net/attention/query/kernel float32[4, 4])",
        "  unexpected: net/old/bias: the checkpoint has float32[3], the model has no such param",
        "  shape: net/mlp/fc1/kernel: checkpoint has float32[4, 8], model needs float32[8, 4] "
        "(nearest: a checkpoint param with that spec is net/mlp/fc2/kernel float32[8, 4])",
        "  dtype: net/norm/scale: checkpoint has float32[4], model needs bfloat16[4]",
    ]
    assert lines[-1].startswith("Build the model with the same graph names and sizes")


def test_header_and_loaded_params_give_the_same_report(tmp_path):
    f = tmp_path / "m.safetensors"
    bx.save(f, _checkpoint())
    from_header = bx.match_report(bx.read_header(f), _model())
    from_params = bx.match_report(bx.load(f), _model())
    assert from_header == from_params
    bx.check_matches(bx.read_header(f), _checkpoint())  # PRNG key dtypes agree across both spellings


def test_long_reports_are_capped_but_counted():
    ckpt = bx.Params({("a", str(i)): bx.Param(jnp.ones(1)) for i in range(30)})
    model = bx.Params({("b", str(i)): _sds((1,)) for i in range(25)})
    with pytest.raises(bx.CheckpointError) as e:
        bx.check_matches(ckpt, model, where="ckpt")
    text = str(e.value)
    assert text.startswith(
        "ckpt: does not match the model: 25 missing in the checkpoint, 30 in the checkpoint, not in the model"
    )
    assert "  ... and 5 more missing" in text and "  ... and 10 more unexpected" in text
    assert text.count("\n  missing: ") == 20
