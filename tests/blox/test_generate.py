"""Sampling rules of blox.models.generate, and examples/generate.py end to end."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _hf_reference import Reference, highest_precision

import blox as bx
from blox.models import Llama, LlamaConfig, filter_logits, generate
from examples import generate as example

transformers = pytest.importorskip("transformers")


def ref_filter(logits, top_k=None, top_p=None):
    """NumPy: keep the top_k largest, then the smallest most-likely set whose probability reaches top_p."""
    out = np.array(logits, np.float64)
    for row in out.reshape(-1, out.shape[-1]):
        order = np.argsort(-row, kind="stable")
        keep = np.ones(row.size, bool)
        if top_k is not None:
            keep[order[top_k:]] = False
        if top_p is not None:
            kept = order[keep[order]]
            p = np.exp(row[kept] - row[kept].max())
            p /= p.sum()
            n = int(np.searchsorted(np.cumsum(p), top_p - 1e-12)) + 1  # tokens needed to reach top_p
            keep[kept[n:]] = False
        row[~keep] = -np.inf
    return out


@pytest.mark.parametrize("top_k, top_p", [(3, None), (None, 0.5), (5, 0.8), (None, 1.0), (1, None)])
def test_filter_logits_matches_numpy(top_k, top_p):
    logits = np.random.RandomState(0).normal(size=(4, 17)).astype(np.float32) * 2
    got = filter_logits(jnp.asarray(logits), top_k, top_p)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref_filter(logits, top_k, top_p)))
    np.testing.assert_allclose(np.where(np.isinf(got), 0, got), np.where(np.isinf(got), 0, logits), rtol=1e-6)


@pytest.fixture(scope="module")
def llama():
    config = LlamaConfig(vocab_size=40, width=32, num_layers=2, num_heads=4, num_kv_heads=2, mlp_size=48)
    model = Llama(bx.Graph("llama") / "model", config)
    abstract = jax.eval_shape(
        lambda: model(bx.seed_all(model.graph.root, bx.Params()), jnp.zeros((1, 4), jnp.int32))[1]
    )
    rs = np.random.RandomState(0)
    seeded = bx.seed_all(model.graph.root, bx.Params())
    params = abstract.map(
        lambda path, p: seeded[path].value if path in seeded else rs.normal(size=p.value.shape).astype(np.float32) * 0.3
    )
    return model, params


def test_sampling_is_reproducible_and_stays_in_the_top_k_of_the_full_recompute(llama):
    model, params = llama
    ids = jnp.array([[3, 1, 4, 1], [5, 9, 2, 6]])
    a = generate(model, params, ids, 12, temperature=1.5, top_k=3, seed=7)
    b = generate(model, params, ids, 12, temperature=1.5, top_k=3, seed=7)
    c = generate(model, params, ids, 12, temperature=1.5, top_k=3, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # Recompute the whole sequence without the cache: each sampled token is among the 3 best at its step.
    logits, _ = model(params, a)
    best3 = np.argsort(-np.asarray(logits), axis=-1)[:, 3:-1, :3]
    new = np.asarray(a)[:, 4:]
    assert all(new[i, j] in best3[i, j] for i in range(2) for j in range(12))


def test_top_k_one_and_a_tiny_nucleus_are_greedy(llama):
    model, params = llama
    ids = jnp.array([[7, 7, 2]])
    greedy = generate(model, params, ids, 8)
    np.testing.assert_array_equal(generate(model, params, ids, 8, temperature=0.7, top_k=1, seed=3), greedy)
    np.testing.assert_array_equal(generate(model, params, ids, 8, temperature=0.7, top_p=1e-6, seed=3), greedy)


def test_left_padded_prompts_generate_as_if_alone(llama):
    model, params = llama
    short = jnp.array([[8, 3]])
    long = jnp.array([[1, 2, 3, 4, 5]])
    batch = jnp.array([[0, 0, 0, 8, 3], [1, 2, 3, 4, 5]])
    mask = jnp.array([[0, 0, 0, 1, 1], [1, 1, 1, 1, 1]])
    out = generate(model, params, batch, 6, mask=mask)
    np.testing.assert_array_equal(out[0, 3:], generate(model, params, short, 6)[0])
    np.testing.assert_array_equal(out[1], generate(model, params, long, 6)[0])
    with pytest.raises(ValueError, match=r"expected temperature >= 0, 0 < top_p <= 1 and top_k >= 1"):
        generate(model, params, short, 2, top_p=0.0)


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    config = transformers.GPT2Config(vocab_size=30, n_positions=32, n_embd=16, n_layer=2, n_head=2, eos_token_id=29)
    ref = Reference.build(transformers.FlaxGPT2LMHeadModel, config)
    return ref, ref.save(str(tmp_path_factory.mktemp("gpt2") / "flax"))


def test_example_greedy_ids_match_the_reference_generate(gpt2_folder, capsys):
    ref, folder = gpt2_folder
    assert example.main([folder, "--ids", "3,14,15", "--max-new-tokens", "20"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    with highest_precision():
        want = ref.generate(np.array([[3, 14, 15]]), max_new_tokens=20, do_sample=False, pad_token_id=29).sequences
    assert printed == [",".join(str(int(t)) for t in want[0])]


def test_example_prompt_uses_the_folder_tokenizer_offline(gpt2_folder, tmp_path, capsys):
    from tokenizers import Tokenizer, models, pre_tokenizers

    _, folder = gpt2_folder
    assert example.main([folder, "--prompt", "hello"]) == 2
    assert "has no tokenizer.json that the tokenizers library can read" in capsys.readouterr().err
    words = [f"w{i}" for i in range(30)]
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="w0"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    import shutil

    shutil.copytree(folder, tmp_path / "tok")
    tokenizer.save(str(tmp_path / "tok" / "tokenizer.json"))
    assert example.main([str(tmp_path / "tok"), "--prompt", "w3 w14", "--max-new-tokens", "5", "--temperature",
                         "0.9", "--top-p", "0.9", "--seed", "1"]) == 0  # fmt: skip
    ids_line, text = capsys.readouterr().out.strip().splitlines()
    ids = [int(t) for t in ids_line.split(",")]
    assert ids[:2] == [3, 14] and len(ids) == 7
    assert text == " ".join(words[i] for i in ids)
