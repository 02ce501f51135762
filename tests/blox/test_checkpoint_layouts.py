"""Hugging Face layouts: a .safetensors file, a model.safetensors.index.json with shards, or a folder of either.

Shards are split by huggingface_hub's own sharding (the logic ``save_pretrained`` uses) and
written with the official safetensors library, so the layout is the real one.
"""

import json
import os

import jax
import ml_dtypes
import numpy as np
import pytest
import safetensors
from huggingface_hub import constants, split_state_dict_into_shards_factory
from safetensors.numpy import save_file

import blox as bx


def _tensors():
    rng = np.random.default_rng(0)
    out = {f"model.layers.{i}.mlp.weight": rng.standard_normal((16, 16)).astype(np.float32) for i in range(4)}
    out["model.embed.weight"] = rng.standard_normal((32, 16)).astype(ml_dtypes.bfloat16)
    out["model.position_ids"] = np.arange(2**40, 2**40 + 16, dtype=np.int64)
    out["lm_head.q"] = rng.standard_normal(8).astype(ml_dtypes.float8_e5m2)
    return out


def _write_sharded(folder, tensors, max_shard_size="2KB"):
    split = split_state_dict_into_shards_factory(
        tensors,
        get_storage_size=lambda a: a.nbytes,
        filename_pattern=constants.SAFETENSORS_WEIGHTS_FILE_PATTERN,
        max_shard_size=max_shard_size,
    )
    assert split.is_sharded
    for filename, names in split.filename_to_tensors.items():
        save_file({n: tensors[n] for n in names}, str(folder / filename), metadata={"format": "np"})
    index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
    (folder / constants.SAFETENSORS_INDEX_FILE).write_text(json.dumps(index))
    return split


def test_an_index_lists_every_shards_tensors_and_reads_them_lazily(tmp_path, monkeypatch):
    tensors = _tensors()
    split = _write_sharded(tmp_path, tensors)
    opened = []
    real = safetensors.safe_open
    monkeypatch.setattr(safetensors, "safe_open", lambda f, *a, **k: opened.append(f) or real(f, *a, **k))
    for where in [tmp_path / constants.SAFETENSORS_INDEX_FILE, tmp_path]:
        opened.clear()
        header = bx.read_header(where)
        assert header.path == str(tmp_path / constants.SAFETENSORS_INDEX_FILE) and not header.is_blox
        assert sorted(header.files) == sorted(str(tmp_path / f) for f in split.filename_to_tensors)
        assert header.metadata == {"total_size": str(split.metadata["total_size"])}
        assert sorted(t.name for t in header.tensors) == sorted(tensors)
        with header:
            for t in header.tensors:
                assert t.file == str(tmp_path / split.tensor_to_filename[t.name])
                got = bx.read_tensor(header, t)
                assert got.dtype == tensors[t.name].dtype and got.tobytes() == tensors[t.name].tobytes(), t.name
        # one safe_open per shard holding a non-float8 tensor, however many tensors it holds
        assert sorted(opened) == sorted(set(opened)) and len(opened) <= len(split.filename_to_tensors)


def test_load_accepts_an_index_or_its_folder(tmp_path):
    tensors = _tensors()
    _write_sharded(tmp_path, tensors)
    params = bx.load(tmp_path)
    assert sorted(params) == sorted(tuple(n.split(".")) for n in tensors)
    assert np.asarray(params["model/position_ids"].value).tobytes() == tensors["model.position_ids"].tobytes()
    like = jax.tree.map(lambda v: jax.ShapeDtypeStruct(v.shape, v.dtype), params)
    assert len(bx.load(tmp_path / constants.SAFETENSORS_INDEX_FILE, like=like)) == len(tensors)


def test_a_folder_with_one_file(tmp_path):
    save_file({"w": np.ones(2, np.float32)}, str(tmp_path / "weights.safetensors"))
    assert bx.read_header(tmp_path).path == str(tmp_path / "weights.safetensors")
    save_file({"v": np.ones(2, np.float32)}, str(tmp_path / constants.SAFETENSORS_SINGLE_FILE))
    assert bx.read_header(tmp_path).path == str(tmp_path / constants.SAFETENSORS_SINGLE_FILE)  # preferred
    os.remove(tmp_path / constants.SAFETENSORS_SINGLE_FILE)
    save_file({"v": np.ones(2, np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(
        bx.CheckpointError, match=r"folder holds several checkpoints \(other.safetensors, weights.safetensors\)"
    ):
        bx.read_header(tmp_path)


def _index(tmp_path, weight_map, **extra):
    f = tmp_path / "x.safetensors.index.json"
    f.write_text(json.dumps({"weight_map": weight_map, **extra}))
    return f


def test_broken_indexes_are_clear_errors(tmp_path):
    save_file({"a": np.ones(1, np.float32), "b": np.ones(1, np.float32)}, str(tmp_path / "s1.safetensors"))
    cases = [
        ({"a": "s1.safetensors"}, r"shard s1.safetensors holds 1 tensor\(s\) the index does not list \(e\.g\. 'b'\)"),
        (
            {"a": "s1.safetensors", "b": "s1.safetensors", "c": "s1.safetensors"},
            r"the index puts tensor 'c' in shard s1.safetensors, which does not hold it",
        ),
        ({"a": "gone.safetensors"}, r"gone.safetensors: cannot read checkpoint: No such file"),
        ({"a": "../s1.safetensors"}, r"shard '\.\./s1.safetensors' is not a plain file name in the index's folder"),
        ({"a": 3}, r"tensor 'a' maps to int, not a file name"),
    ]
    for weight_map, match in cases:
        with pytest.raises(bx.CheckpointError, match=match):
            bx.read_header(_index(tmp_path, weight_map))
    f = tmp_path / "y.index.json"
    f.write_text("{nope")
    with pytest.raises(bx.CheckpointError, match=r"y.index.json: not a safetensors index: the file is not valid JSON"):
        bx.read_header(f)
    f.write_text("[]")
    with pytest.raises(bx.CheckpointError, match=r"y.index.json: not a safetensors index: no weight_map object"):
        bx.read_header(f)
