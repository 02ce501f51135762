"""The files of a Hugging Face model folder: which tensors it holds where, lazy slice reads, sharded writes.

Reads go through the official ``safetensors`` library (``framework='numpy'``,
which returns bfloat16 as ``ml_dtypes.bfloat16``). Each read opens the file,
copies the requested slice and closes it again, so the memory-mapped pages it
touched are unmapped right away: loading a checkpoint holds the loaded params
plus about one tensor, never a whole shard.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import ml_dtypes  # noqa: F401  (registers bfloat16 with NumPy, which safetensors needs to return BF16)
import numpy as np

from .._errors import CheckpointError

SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
SHARD = "model-{:05d}-of-{:05d}.safetensors"
_SHARD_RE = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")

MSG_NO_WEIGHTS = (
    "{where}: no {single} and no {index}. blox.models reads safetensors checkpoints: one {single}, or shards "
    "listed by {index}.{extra}"
)
MSG_BIN = (
    " This folder has PyTorch pickles ({found}); convert them to safetensors first (e.g. with the Hugging Face "
    "convert script), since pickles can run code and are not read here."
)
MSG_INDEX = "{where}: {index} is unreadable or has no 'weight_map' ({why}). Re-download or re-save the folder."
MSG_SHARD_MISSING = (
    "{where}: {index} names {count} tensor(s) in {file}, which is not in the folder. Download every shard the "
    "index lists."
)
MSG_UNREADABLE = "{where}: cannot read safetensors file {file} ({why}). It is truncated or not a safetensors file."
MSG_DUPLICATE = "{where}: tensor {name!r} is stored twice, in {a} and in {b}. Keep one copy (check the index)."
MSG_INDEX_MISMATCH = (
    "{where}: {index} says tensor {name!r} is in {claimed}, but {found}. The index and the shards disagree; "
    "re-download the folder."
)

# safetensors dtype codes -> numpy dtypes (bfloat16 comes from ml_dtypes, as safetensors itself returns it).
DTYPES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16"}


@dataclass(frozen=True)
class StoredTensor:
    """One tensor of the folder: its file, shape and safetensors dtype code."""

    file: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Folder:
    """The tensors of a Hugging Face model folder, from the file headers only."""

    path: str
    tensors: dict[str, StoredTensor]
    format: str | None  # the 'format' metadata ('pt', 'flax', ...) of the first file, if any
    files: tuple[str, ...]


def _weight_files(folder: str) -> tuple[list[str], dict[str, str] | None]:
    single = os.path.join(folder, SINGLE)
    index = os.path.join(folder, INDEX)
    if os.path.isfile(single):
        return [single], None
    if not os.path.isfile(index):
        bins = sorted(f for f in os.listdir(folder) if f.endswith((".bin", ".pt", ".pth", ".ckpt")))
        extra = MSG_BIN.format(found=", ".join(bins)) if bins else ""
        raise CheckpointError(MSG_NO_WEIGHTS.format(where=folder, single=SINGLE, index=INDEX, extra=extra))
    try:
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        if not isinstance(weight_map, dict):
            raise TypeError(f"weight_map is a {type(weight_map).__name__}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(MSG_INDEX.format(where=folder, index=INDEX, why=e)) from e
    files = []
    for name in dict.fromkeys(weight_map.values()):
        file = os.path.join(folder, name)
        if not os.path.isfile(file):
            count = sum(1 for v in weight_map.values() if v == name)
            raise CheckpointError(MSG_SHARD_MISSING.format(where=folder, index=INDEX, count=count, file=name))
        files.append(file)
    return files, weight_map


def list_tensors(folder: str | os.PathLike) -> Folder:
    """Every tensor of a model folder with its file, shape and dtype, reading headers only."""
    from safetensors import safe_open

    folder = os.fspath(folder)
    files, weight_map = _weight_files(folder)
    tensors: dict[str, StoredTensor] = {}
    fmt = None
    for i, file in enumerate(files):
        try:
            with safe_open(file, framework="numpy") as f:
                if i == 0:
                    fmt = (f.metadata() or {}).get("format")
                for name in f.keys():
                    s = f.get_slice(name)
                    if name in tensors:
                        raise CheckpointError(
                            MSG_DUPLICATE.format(where=folder, name=name, a=tensors[name].file, b=file)
                        )
                    tensors[name] = StoredTensor(file, tuple(s.get_shape()), s.get_dtype())
        except CheckpointError:
            raise
        except Exception as e:  # safetensors raises its own SafetensorError (and OSError) for bad files
            raise CheckpointError(MSG_UNREADABLE.format(where=folder, file=os.path.basename(file), why=e)) from e
    for name, shard in (weight_map or {}).items():
        got = tensors.get(name)
        if got is None or os.path.basename(got.file) != shard:
            found = "no shard holds it" if got is None else f"it is in {os.path.basename(got.file)}"
            raise CheckpointError(
                MSG_INDEX_MISMATCH.format(where=folder, index=INDEX, name=name, claimed=shard, found=found)
            )
    return Folder(folder, tensors, fmt, tuple(files))


def read(file: str, name: str, index: tuple[slice, ...] | None) -> np.ndarray:
    """``tensor[index]`` (the whole tensor for None) of one file, as an owned numpy array.

    The file is opened for this read only, so its mapped pages do not stay resident.
    """
    from safetensors import safe_open

    with safe_open(file, framework="numpy") as f:
        s = f.get_slice(name)
        return s[:] if index is None else s[index]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str, write) -> None:
    """Calls ``write(temporary path)``, then renames the result over ``path``; a failure leaves ``path`` as it was."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def plan_shards(sizes: Iterable[tuple[str, int]], max_shard_size: int) -> list[list[str]]:
    """Groups tensor names, in order, into shards of at most ``max_shard_size`` bytes (a bigger tensor alone)."""
    shards: list[list[str]] = [[]]
    used = 0
    for name, size in sizes:
        if shards[-1] and used + size > max_shard_size:
            shards.append([])
            used = 0
        shards[-1].append(name)
        used += size
    return shards


def write_folder(
    folder: str,
    config: dict,
    shards: list[list[str]],
    tensor: callable,
    sizes: dict[str, int],
) -> list[str]:
    """Writes config.json and the shards (``tensor(name)`` makes each array), each file atomically.

    Weight files left from an earlier save that the new one does not use
    (``model.safetensors`` beside a new index, or surplus shards) are removed
    only after everything new is in place.
    """
    from safetensors.numpy import save_file

    os.makedirs(folder, exist_ok=True)
    n = len(shards)
    names = [SINGLE] if n == 1 else [SHARD.format(i + 1, n) for i in range(n)]
    written = []
    weight_map = {}
    for file, members in zip(names, shards):
        path = os.path.join(folder, file)
        arrays = {name: np.ascontiguousarray(tensor(name)) for name in members}
        write_atomic(path, lambda tmp, arrays=arrays: save_file(arrays, tmp, metadata={"format": "pt"}))
        del arrays
        weight_map.update(dict.fromkeys(members, file))
        written.append(path)
    if n > 1:
        index = {"metadata": {"total_size": sum(sizes.values())}, "weight_map": weight_map}
        path = os.path.join(folder, INDEX)
        write_atomic(path, lambda tmp: _write_json(tmp, index))
        written.append(path)
    path = os.path.join(folder, "config.json")
    write_atomic(path, lambda tmp: _write_json(tmp, config))
    written.append(path)
    keep = {os.path.basename(p) for p in written}
    for stale in _old_weight_files(folder):
        if stale not in keep:
            os.unlink(os.path.join(folder, stale))
    return written


def _old_weight_files(folder: str) -> Iterator[str]:
    for name in os.listdir(folder):
        if name in (SINGLE, INDEX) or _SHARD_RE.fullmatch(name):
            yield name


def _write_json(path: str, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
