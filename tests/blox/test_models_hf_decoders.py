"""GPT-2 and Llama from Hugging Face folders, compared with Hugging Face's own Flax implementation."""

import os

import jax
import numpy as np
import pytest
from _hf_reference import Reference, edit_config, highest_precision, rewrite_pt

from blox.models import GPT2, Llama, from_hf, generate, to_hf

transformers = pytest.importorskip("transformers")

VOCAB = 96


@pytest.fixture(autouse=True)
def precise():
    with highest_precision():
        yield


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    """(reference, folders): a tiny randomised FlaxGPT2LMHeadModel in Flax naming and in two PyTorch namings."""
    config = transformers.GPT2Config(
        vocab_size=VOCAB, n_positions=32, n_embd=32, n_layer=2, n_head=4, pad_token_id=0, bos_token_id=0,
        eos_token_id=VOCAB,  # never generated: the reference's generate needs some eos
    )  # fmt: skip
    ref = Reference.build(transformers.FlaxGPT2LMHeadModel, config)
    root = tmp_path_factory.mktemp("gpt2")
    flax = ref.save(str(root / "flax"))
    # The hub's gpt2 files: no 'transformer.' prefix, and the causal-mask buffers stored beside the weights.
    buffers = {f"h.{i}.attn.bias": np.tril(np.ones((1, 1, 32, 32), np.float32)) for i in range(2)}
    hub = rewrite_pt(flax, str(root / "hub"), strip_prefix="transformer", extra=buffers)
    pt = rewrite_pt(flax, str(root / "pt"))
    return ref, {"flax": flax, "pt": pt, "hub": hub}


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    config = transformers.LlamaConfig(
        vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, eos_token_id=VOCAB, pad_token_id=0,
    )  # fmt: skip
    ref = Reference.build(transformers.FlaxLlamaForCausalLM, config, seed=1)
    root = tmp_path_factory.mktemp("llama")
    flax = ref.save(str(root / "flax"))
    return ref, {"flax": flax, "pt": rewrite_pt(flax, str(root / "pt"))}


def ids_and_mask(seq_len, seed=0):
    rs = np.random.RandomState(seed)
    ids = rs.randint(0, VOCAB, (2, seq_len)).astype(np.int32)
    mask = np.ones((2, seq_len), np.int32)
    mask[1, seq_len - 2 :] = 0  # the second sequence is right-padded
    return ids, mask


def run(model, params, ids, mask=None):
    logits, _ = jax.jit(lambda p, i, m: model(p, i, mask=m, is_training=False))(params, ids, mask)
    return np.asarray(logits)


@pytest.mark.parametrize("naming", ["flax", "pt", "hub"])
def test_gpt2_logits_match_the_reference_in_every_naming(gpt2, naming):
    ref, folders = gpt2
    model, params = from_hf(folders[naming])
    assert isinstance(model, GPT2) and model.cfg.num_layers == 2 and model.cfg.dropout_rate == 0.1
    # Several lengths in one naming; the others share the code after the read, so one length each.
    for seq_len in (1, 5, 17) if naming == "flax" else (6,):
        ids, mask = ids_and_mask(seq_len)
        np.testing.assert_allclose(run(model, params, ids), ref(ids).logits, atol=1e-5, rtol=1e-5)
        if seq_len > 2:
            want = ref(ids, attention_mask=mask).logits
            np.testing.assert_allclose(run(model, params, ids, mask), want, atol=1e-5, rtol=1e-5)


def test_pt_rewrite_is_what_the_reference_loader_reads(gpt2, llama):
    # The reference's own loader converts our PyTorch-named test folders back: the rewrite is the hub's naming.
    ids, _ = ids_and_mask(6)
    for (ref, folders), cls in ((gpt2, transformers.FlaxGPT2LMHeadModel), (llama, transformers.FlaxLlamaForCausalLM)):
        back = Reference.load(cls, folders["pt"])
        np.testing.assert_allclose(back(ids).logits, ref(ids).logits, atol=1e-6)


@pytest.mark.parametrize("naming", ["flax", "pt"])
def test_llama_gqa_logits_match_the_reference(llama, naming):
    ref, folders = llama
    model, params = from_hf(folders[naming])
    assert isinstance(model, Llama) and model.cfg.num_kv_heads == 2 and model.lm_head is not None
    assert params["llama/model/layers/1/attn/key/kernel"].value.shape == (32, 16)
    for seq_len in (1, 7, 20) if naming == "flax" else (9,):
        ids, mask = ids_and_mask(seq_len, seed=seq_len)
        np.testing.assert_allclose(run(model, params, ids), ref(ids).logits, atol=1e-5, rtol=1e-5)
        if seq_len > 2:
            want = ref(ids, attention_mask=mask).logits
            np.testing.assert_allclose(run(model, params, ids, mask), want, atol=1e-5, rtol=1e-5)


def test_tied_llama_uses_the_embedding_as_head(llama, tmp_path):
    ref, folders = llama
    # A tied checkpoint (Llama 3.2 style) stores no lm_head; the reference computes it with embedding.T.
    pt = rewrite_pt(folders["flax"], str(tmp_path / "tied"))
    from safetensors.numpy import load_file, save_file

    tensors = load_file(os.path.join(pt, "model.safetensors"))
    del tensors["lm_head.weight"]
    save_file(tensors, os.path.join(pt, "model.safetensors"), metadata={"format": "pt"})
    edit_config(pt, tie_word_embeddings=True)
    model, params = from_hf(pt)
    assert model.lm_head is None and not any("lm_head" in "/".join(k) for k in params)
    tied = jax.tree.map(lambda x: x, ref.params)
    tied["lm_head"]["kernel"] = ref.params["model"]["embed_tokens"]["embedding"].T
    ids, _ = ids_and_mask(9)
    np.testing.assert_allclose(run(model, params, ids), ref(ids, params=tied).logits, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_to_hf_folder_loads_in_the_reference_with_the_same_logits(name, gpt2, llama, tmp_path):
    ref, folders = {"gpt2": gpt2, "llama": llama}[name]
    cls = {"gpt2": transformers.FlaxGPT2LMHeadModel, "llama": transformers.FlaxLlamaForCausalLM}[name]
    model, params = from_hf(folders["flax"])
    written = to_hf(model, params, str(tmp_path / "out"))
    assert sorted(os.path.basename(p) for p in written) == ["config.json", "model.safetensors"]
    back = Reference.load(cls, str(tmp_path / "out"))
    ids, mask = ids_and_mask(8)
    np.testing.assert_allclose(back(ids, attention_mask=mask).logits, ref(ids, attention_mask=mask).logits, atol=1e-6)


def test_sharded_to_hf_writes_an_index_that_from_hf_and_safetensors_agree_on(llama, tmp_path):
    import json

    from safetensors import safe_open

    ref, folders = llama
    model, params = from_hf(folders["pt"])
    out = str(tmp_path / "sharded")
    written = to_hf(model, params, out, max_shard_size=20_000)
    with open(os.path.join(out, "model.safetensors.index.json")) as f:
        index = json.load(f)
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 2 and shards[0] == f"model-00001-of-{len(shards):05d}.safetensors"
    total = 0
    for shard in shards:
        with safe_open(os.path.join(out, shard), framework="numpy") as f:
            assert f.metadata() == {"format": "pt"}
            assert set(f.keys()) == {k for k, v in index["weight_map"].items() if v == shard}
            total += sum(f.get_tensor(k).nbytes for k in f.keys())
    assert index["metadata"]["total_size"] == total
    assert "model.layers.0.self_attn.q_proj.weight" in index["weight_map"]
    assert os.path.join(out, "config.json") in written
    loaded, loaded_params = from_hf(out)
    ids, _ = ids_and_mask(5)
    np.testing.assert_allclose(run(loaded, loaded_params, ids), ref(ids).logits, atol=1e-5, rtol=1e-5)
    # Saving again unsharded removes the shards and the index, which would otherwise shadow nothing but confuse.
    to_hf(loaded, loaded_params, out)
    assert sorted(os.listdir(out)) == ["config.json", "model.safetensors"]


@pytest.mark.parametrize("name", ["gpt2", "llama"])
def test_greedy_generation_with_the_kv_cache_equals_reference_generate(name, gpt2, llama):
    ref, folders = {"gpt2": gpt2, "llama": llama}[name]
    model, params = from_hf(folders["pt"])
    ids = np.random.RandomState(3).randint(1, VOCAB, (2, 5)).astype(np.int32)
    got = generate(model, params, ids, 20)
    want = ref.generate(ids, max_new_tokens=20, do_sample=False).sequences
    np.testing.assert_array_equal(got, want)


def test_generation_stops_at_eos_and_pads_like_the_reference(llama):
    ref, folders = llama
    model, params = from_hf(folders["flax"])
    ids = np.random.RandomState(5).randint(1, VOCAB, (2, 4)).astype(np.int32)
    free = np.asarray(generate(model, params, ids, 12))
    eos = int(free[0, 4 + 3])  # the first sequence's fourth new token ends it
    got = generate(model, params, ids, 12, eos_token_id=eos, pad_token_id=0)
    want = ref.generate(ids, max_new_tokens=12, do_sample=False, eos_token_id=eos, pad_token_id=0).sequences
    np.testing.assert_array_equal(got, want)
    assert (np.asarray(got)[0, 8:] == 0).all()


def test_cached_decoding_equals_recomputing_the_full_sequence(llama):
    _, folders = llama
    model, params = from_hf(folders["pt"], scan=True)
    ids = np.random.RandomState(4).randint(0, VOCAB, (2, 9)).astype(np.int32)
    full = run(model, params, ids)
    step = jax.jit(lambda p, i, c: model(p, i, cache=c)[0])
    logits, cache = step(params, ids[:, :4], model.init_cache(2, 12))
    steps = [logits]
    for t in range(4, 9):
        logits, cache = step(params, ids[:, t : t + 1], cache)
        steps.append(logits)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5, rtol=1e-5)
