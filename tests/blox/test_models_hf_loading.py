"""from_hf's options (dtype, mesh, scan) and errors, and Llama 3 RoPE against the reference with its table rebuilt."""

import json
import os

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from _hf_reference import Reference, highest_precision, rewrite_pt
from jax.sharding import Mesh
from safetensors.numpy import load_file, save_file
from test_attention import ref_llama3_frequencies

import blox as bx
from blox.models import (
    GPT2,
    GPT2Config,
    HFMatchError,
    LlamaConfig,
    build_from_config,
    count_params,
    from_hf,
    to_hf,
)

transformers = pytest.importorskip("transformers")


@pytest.fixture(autouse=True)
def precise():
    with highest_precision():
        yield


def tiny_gpt2(tmp_path, name="gpt2", **overrides):
    """A random GPT-2 written by to_hf (the error tests need only some folder that fits its config)."""
    config = GPT2Config(vocab_size=40, max_len=16, width=16, num_layers=2, num_heads=2, mlp_size=32, **overrides)
    model = GPT2(bx.Graph("gpt2") / "transformer", config)
    ids = jnp.zeros((1, 4), jnp.int32)
    _, params = jax.eval_shape(lambda: model(bx.seed_all(model.graph.root, bx.Params()), ids, is_training=False))
    rs = np.random.RandomState(0)
    params = params.map(lambda path, p: rs.normal(size=p.value.shape).astype(np.float32) if p.trainable else None)
    params = bx.Params({k: p for k, p in params.items() if p.value is not None})
    folder = str(tmp_path / name)
    to_hf(model, params, folder)
    return model, params, folder


def test_match_report_lists_missing_mismatched_and_unexpected_tensors(tmp_path):
    _, _, folder = tiny_gpt2(tmp_path)
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    config.update(n_layer=3, n_inner=48)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    tensors = load_file(os.path.join(folder, "model.safetensors"))
    tensors["transformer.h.0.attn.rotary.weight"] = np.zeros(3, np.float32)
    tensors["transformer.h.1.attn.bias"] = np.zeros(3, np.float32)  # a causal-mask buffer: ignored
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(HFMatchError) as info:
        from_hf(folder)
    report = info.value.match
    assert ("transformer.h.2.ln_1.weight", (16,), "gpt2/transformer/h/2/ln_1/scale") in report.missing
    qkv = "gpt2/transformer/h/2/attn/query/kernel, gpt2/transformer/h/2/attn/key/kernel, gpt2/transformer/h/2/attn/value/kernel"
    assert ("transformer.h.2.attn.c_attn.weight", (16, 48), qkv) in report.missing
    assert ("transformer.h.0.mlp.c_fc.weight", (16, 32), (16, 48), "gpt2/transformer/h/0/mlp/fc/kernel") in (
        report.mismatched
    )
    assert report.unexpected == (("transformer.h.0.attn.rotary.weight", (3,)),)
    assert report.ignored == ("transformer.h.1.attn.bias",)
    message = str(info.value)
    assert "the checkpoint (PyTorch naming) does not fit the model its config.json describes" in message
    assert "transformer.h.0.mlp.c_fc.weight: file has [16, 32], config needs [16, 48]" in message
    assert "missing from the folder (12):" in message and "... and 2 more" in message
    assert len(report.mismatched) == 6  # c_fc weight and bias, c_proj weight, in both layers


def test_folder_errors_say_what_is_expected(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(bx.CheckpointError, match=r"no config\.json\. A Hugging Face model folder holds config\.json"):
        from_hf(str(empty))
    (empty / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    (empty / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(bx.CheckpointError, match=r"no model\.safetensors .* PyTorch pickles \(pytorch_model\.bin\)"):
        from_hf(str(empty))
    (empty / "config.json").write_text(json.dumps({"model_type": "mistral"}))
    with pytest.raises(bx.CheckpointError, match=r"model_type 'mistral' is not supported; blox.models reads \['bert'"):
        from_hf(str(empty))
    with pytest.raises(
        bx.CheckpointError, match=r"sets add_cross_attention=True, which blox.models does not implement"
    ):
        build_from_config({"model_type": "gpt2", "add_cross_attention": True})
    with pytest.raises(ValueError, match=r"config.json's rope_scaling: apply_rope: rope scaling .*'yarn'"):
        build_from_config({**LLAMA_7B, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}})
    _, _, folder = tiny_gpt2(tmp_path)
    index = {"metadata": {}, "weight_map": {"wte.weight": "model-00001-of-00002.safetensors"}}
    os.rename(os.path.join(folder, "model.safetensors"), os.path.join(folder, "other.safetensors"))
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f)
    with pytest.raises(
        bx.CheckpointError, match=r"names 1 tensor\(s\) in model-00001-of-00002.safetensors, which is not"
    ):
        from_hf(folder)


def test_bfloat16_conversion_while_reading_and_stored_bfloat16_kept(tmp_path):
    model, params, folder = tiny_gpt2(tmp_path)
    stored = load_file(os.path.join(folder, "model.safetensors"))
    _, half = from_hf(folder, dtype=jnp.bfloat16)
    q = half["gpt2/transformer/h/1/attn/key/kernel"].value
    assert q.dtype == jnp.bfloat16
    want = stored["transformer.h.1.attn.c_attn.weight"][:, 16:32].astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(np.asarray(q), want)
    # A bfloat16 folder loads as bfloat16 by default, bit for bit.
    to_hf(model, half, str(tmp_path / "bf16"))
    again_model, again = from_hf(str(tmp_path / "bf16"))
    assert again_model.cfg.param_dtype == jnp.bfloat16
    assert json.load(open(tmp_path / "bf16" / "config.json"))["torch_dtype"] == "bfloat16"
    for path, p in half.split()[0].items():
        np.testing.assert_array_equal(np.asarray(again[path].value), np.asarray(p.value))


def test_mesh_places_each_param_sharded_from_its_metadata_reading_only_slices(tmp_path, monkeypatch):
    from blox.models import _hf

    _, params, folder = tiny_gpt2(tmp_path)
    mesh = Mesh(np.array(jax.devices()[:8]).reshape(2, 4), ("data", "model"))
    reads = []
    real_read = _hf.read
    monkeypatch.setattr(
        _hf, "read", lambda file, name, index: reads.append((name, index)) or real_read(file, name, index)
    )
    model, sharded = from_hf(folder, mesh=mesh)
    key = sharded["gpt2/transformer/h/0/attn/key/kernel"]
    assert key.sharding == (None, "model") and key.value.sharding.spec == jax.sharding.PartitionSpec(None, "model")
    assert {s.data.shape for s in key.value.addressable_shards} == {(16, 4)}
    stored = load_file(os.path.join(folder, "model.safetensors"))["transformer.h.0.attn.c_attn.weight"]
    np.testing.assert_array_equal(np.asarray(key.value), stored[:, 16:32])
    # Each device read its quarter of the key columns, never the fused c_attn tensor whole.
    key_reads = [
        i for n, i in reads if n == "transformer.h.0.attn.c_attn.weight" and i[1].stop <= 32 and i[1].start >= 16
    ]
    assert {(i[1].start, i[1].stop) for i in key_reads} == {(16, 20), (20, 24), (24, 28), (28, 32)}
    ids = np.arange(8, dtype=np.int32)[None] % 40
    plain, plain_params = from_hf(folder)
    want, _ = plain(plain_params, ids, is_training=False)
    got, _ = jax.jit(lambda p, i: model(p, i, is_training=False))(sharded, ids)
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(bx.CheckpointError, match=r"sharded over mesh axis 'model' .* the mesh has axes \('data',\)"):
        from_hf(folder, mesh=Mesh(np.array(jax.devices()[:8]), ("data",)))
    with pytest.raises(
        bx.CheckpointError, match=r"cannot be split evenly: axis 0 \(16\) over mesh axis 'model' of size 3"
    ):
        from_hf(folder, mesh=Mesh(np.array(jax.devices()[:6]).reshape(2, 3), ("data", "model")))


def test_scanned_gpt2_loads_stacked_params_with_the_same_logits(tmp_path):
    _, _, folder = tiny_gpt2(tmp_path)
    plain, plain_params = from_hf(folder)
    scanned, scanned_params = from_hf(folder, scan=True)
    assert scanned_params["gpt2/transformer/h/block/attn/query/kernel"].value.shape == (2, 16, 16)
    ids = np.arange(6, dtype=np.int32)[None]
    want, _ = plain(plain_params, ids, is_training=False)
    got, _ = scanned(scanned_params, ids, is_training=False)
    np.testing.assert_allclose(got, want, atol=1e-5)
    # to_hf unstacks them again: the files are the same tensors.
    to_hf(scanned, scanned_params, str(tmp_path / "again"))
    a = load_file(os.path.join(folder, "model.safetensors"))
    b = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


LLAMA_7B = {
    "model_type": "llama",
    "architectures": ["LlamaForCausalLM"],
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_attention_heads": 32,
    "num_hidden_layers": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-05,
    "torch_dtype": "float16",
}


def test_build_from_config_builds_abstractly_with_published_counts(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_7B))
    model, inputs, kwargs = build_from_config(str(tmp_path), seq_len=64, param_dtype=jnp.bfloat16)
    assert model.cfg == LlamaConfig(param_dtype=jnp.bfloat16, norm_epsilon=1e-5, rope_base=10000.0)
    assert inputs == (jax.ShapeDtypeStruct((1, 64), jnp.int32),) and kwargs == {}
    params = jax.eval_shape(lambda ids: model(bx.seed_all(model.graph.root, bx.Params()), ids)[1], *inputs)
    assert count_params(params) == 6_738_415_616
    model, inputs, kwargs = build_from_config({"model_type": "vit", "architectures": ["ViTForImageClassification"],
                                               "id2label": {str(i): str(i) for i in range(1000)}})  # fmt: skip
    params = jax.eval_shape(lambda x: model(bx.seed_all(model.graph.root, bx.Params()), x, **kwargs)[1], *inputs)
    assert count_params(params) == 86_567_656 and inputs[0].shape == (1, 224, 224, 3)


def scaled_table(base, scaling):
    """Hugging Face's (sin, cos) position table, rebuilt from the reference frequencies of test_attention."""

    def create(num_pos, dim):
        freqs = ref_llama3_frequencies(dim, base, scaling["factor"], scaling["low_freq_factor"],
                                       scaling["high_freq_factor"], scaling["original_max_position_embeddings"])  # fmt: skip
        angles = np.arange(num_pos)[:, None] * freqs[None]
        emb = np.concatenate([angles, angles], -1).astype(np.float32)
        return jnp.array(np.concatenate([np.sin(emb)[:, None], np.cos(emb)[:, None]], -1))

    return create


def test_llama3_rope_theta_and_scaling_match_the_reference_with_its_table_rebuilt(tmp_path, monkeypatch):
    # The Flax reference ignores rope_theta and rope_scaling, so its table is rebuilt with the published Llama 3 rule.
    from transformers.models.llama import modeling_flax_llama

    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 16}  # fmt: skip
    monkeypatch.setattr(modeling_flax_llama, "create_sinusoidal_positions", scaled_table(500000.0, scaling))
    config = transformers.LlamaConfig(
        vocab_size=50, hidden_size=64, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=64, rope_theta=500000.0, rope_scaling=scaling,
    )  # fmt: skip
    ref = Reference.build(transformers.FlaxLlamaForCausalLM, config, seed=2)
    pt = rewrite_pt(ref.save(str(tmp_path / "flax")), str(tmp_path / "pt"))
    model, params = from_hf(pt)
    assert model.cfg.rope_base == 500000.0 and dict(model.cfg.rope_scaling)["rope_type"] == "llama3"
    ids = np.random.RandomState(0).randint(0, 50, (1, 40)).astype(np.int32)
    got, _ = jax.jit(model)(params, ids)
    np.testing.assert_allclose(got, ref(ids).logits, atol=1e-5, rtol=1e-5)
