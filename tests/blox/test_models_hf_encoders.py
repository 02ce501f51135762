"""BERT and ViT from Hugging Face folders, compared with Hugging Face's own Flax implementation."""

import os

import jax
import numpy as np
import pytest
from _hf_reference import Reference, highest_precision, rewrite_pt

from blox.models import Bert, ViT, from_hf, to_hf

transformers = pytest.importorskip("transformers")

VOCAB = 80


@pytest.fixture(autouse=True)
def precise():
    with highest_precision():
        yield


def old_bert_names(tensors):
    """BERT checkpoints converted from TensorFlow keep LayerNorm's gamma/beta names."""
    out = {}
    for name, value in tensors.items():
        if ".LayerNorm." in name:
            name = name.replace(".weight", ".gamma").replace(".bias", ".beta")
        out[name] = value
    return out


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
        max_position_embeddings=40, type_vocab_size=2,
    )  # fmt: skip
    ref = Reference.build(transformers.FlaxBertModel, config)
    root = tmp_path_factory.mktemp("bert")
    flax = ref.save(str(root / "flax"))
    pt = rewrite_pt(flax, str(root / "pt"))
    # A hub-style BertForPreTraining file: 'bert.' prefix, gamma/beta, a position_ids buffer and the MLM head.
    from safetensors.numpy import load_file, save_file

    tensors = {f"bert.{k}": v for k, v in old_bert_names(load_file(os.path.join(pt, "model.safetensors"))).items()}
    tensors["bert.embeddings.position_ids"] = np.arange(40, dtype=np.int64)[None]
    tensors["cls.predictions.bias"] = np.zeros(VOCAB, np.float32)
    hub = str(root / "hub")
    os.makedirs(hub)
    os.rename(os.path.join(pt, "config.json"), os.path.join(hub, "config.json"))
    save_file(tensors, os.path.join(hub, "model.safetensors"), metadata={"format": "pt"})
    rewrite_pt(flax, pt)  # config.json back in place
    return ref, {"flax": flax, "pt": pt, "hub": hub}


def bert_inputs(seq_len, seed=0):
    rs = np.random.RandomState(seed)
    ids = rs.randint(0, VOCAB, (3, seq_len)).astype(np.int32)
    types = (np.arange(seq_len)[None] >= seq_len // 2).astype(np.int32).repeat(3, 0)
    mask = np.ones((3, seq_len), np.int32)
    mask[1, seq_len - 3 :] = 0
    mask[2, 1:] = 0
    return ids, types, mask


def run_bert(model, params, ids, types, mask):
    out, _ = jax.jit(lambda p, i, t, m: model(p, i, token_type_ids=t, mask=m, is_training=False))(
        params, ids, types, mask
    )
    return out


@pytest.mark.parametrize("naming", ["flax", "pt", "hub"])
def test_bert_hidden_states_and_pooler_match_the_reference(bert, naming):
    ref, folders = bert
    model, params = from_hf(folders[naming])
    assert isinstance(model, Bert) and model.cfg.norm_epsilon == 1e-12 and model.pooler is not None
    for seq_len in (4, 11) if naming == "flax" else (7,):
        ids, types, mask = bert_inputs(seq_len, seq_len)
        for m in (None, mask):
            got = run_bert(model, params, ids, types, m)
            want = ref(ids, token_type_ids=types, attention_mask=m)
            np.testing.assert_allclose(got.last_hidden_state, want.last_hidden_state, atol=1e-5, rtol=1e-5)
            np.testing.assert_allclose(got.pooler_output, want.pooler_output, atol=1e-5, rtol=1e-5)


def test_bert_to_hf_loads_in_the_reference(bert, tmp_path):
    ref, folders = bert
    model, params = from_hf(folders["hub"])
    to_hf(model, params, str(tmp_path / "out"))
    back = Reference.load(transformers.FlaxBertModel, str(tmp_path / "out"))
    ids, types, mask = bert_inputs(7)
    want = ref(ids, token_type_ids=types, attention_mask=mask)
    got = back(ids, token_type_ids=types, attention_mask=mask)
    np.testing.assert_allclose(got.last_hidden_state, want.last_hidden_state, atol=1e-6)
    np.testing.assert_allclose(got.pooler_output, want.pooler_output, atol=1e-6)


VIT = dict(image_size=16, patch_size=4, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
           intermediate_size=48)  # fmt: skip


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    root = tmp_path_factory.mktemp("vit")
    out = {}
    for name, cls, extra in (
        ("base", transformers.FlaxViTModel, {}),
        ("classifier", transformers.FlaxViTForImageClassification, {"num_labels": 5}),
    ):
        ref = Reference.build(cls, transformers.ViTConfig(**VIT, **extra), seed=3)
        flax = ref.save(str(root / f"{name}-flax"))
        out[name] = (ref, cls, {"flax": flax, "pt": rewrite_pt(flax, str(root / f"{name}-pt"))})
    return out


def images(batch=2, seed=0):
    return np.random.RandomState(seed).normal(size=(batch, 16, 16, 3)).astype(np.float32)


@pytest.mark.parametrize("naming", ["flax", "pt"])
def test_vit_features_and_pooler_match_the_reference(vit, naming):
    ref, _, folders = vit["base"]
    model, params = from_hf(folders[naming])
    assert isinstance(model, ViT) and model.head is None and model.pooler is not None
    x = images()
    got, _ = jax.jit(lambda p, x: model(p, x, is_training=False))(params, x)
    want = ref(x.transpose(0, 3, 1, 2))  # the reference takes channels-first pixel_values
    np.testing.assert_allclose(got.last_hidden_state, want.last_hidden_state, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got.pooler_output, want.pooler_output, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("naming", ["flax", "pt"])
def test_vit_classifier_logits_match_the_reference_and_survive_to_hf(vit, naming, tmp_path):
    ref, cls, folders = vit["classifier"]
    model, params = from_hf(folders[naming])
    assert model.cfg.num_classes == 5
    x = images(3, seed=1)
    got, _ = jax.jit(lambda p, x: model(p, x, is_training=False))(params, x)
    want = ref(x.transpose(0, 3, 1, 2)).logits
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
    to_hf(model, params, str(tmp_path / "out"))
    back = Reference.load(cls, str(tmp_path / "out"))
    np.testing.assert_allclose(back(x.transpose(0, 3, 1, 2)).logits, want, atol=1e-6)
