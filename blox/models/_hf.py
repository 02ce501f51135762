"""Hugging Face model folders: build a model from config.json, load its weights (from_hf), save one (to_hf)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from .._errors import CheckpointError
from .._graph import Graph
from .._module import Module
from .._params import Param, Params
from .._paths import path_str
from .._rng import seed_all
from .._scan import LAYERS_KEY
from ._bert import Bert, BertConfig
from ._common import read_config
from ._gpt2 import GPT2, GPT2Config
from ._hf_files import DTYPES, Folder, list_tensors, plan_shards, read, write_folder
from ._hf_names import ALIASES, HFTensor
from ._llama import Llama, LlamaConfig
from ._vit import ViT, ViTConfig

MSG_MODEL_TYPE = (
    "{where}: model_type {got!r} is not supported; blox.models reads {known}. (Llama-compatible families with "
    "other model_type names need their own entry: their configs differ in fields that change the computation.)"
)
MSG_NOT_HF = (
    "to_hf: {got} is not a blox.models architecture ({known}); only those have a Hugging Face naming. Save other "
    "models with blox.save."
)
MSG_NO_PARAM = (
    "to_hf: params have no {path}, which {model} needs for {name}. Pass the params this model was built with "
    "(from from_hf, or from an init of this model)."
)
MSG_MESH_AXIS = (
    "from_hf: param {path} is sharded over mesh axis {axis!r} (its metadata: {spec}), but the mesh has axes "
    "{axes}. Pass model_axis=None to replicate, or a mesh with that axis."
)
MSG_MESH_DIVIDE = (
    "from_hf: param {path} of shape {shape} cannot be split evenly: axis {dim} ({size}) over mesh axis {axis!r} of "
    "size {n}. Use a mesh axis size that divides it, or pass model_axis=None."
)


class Architecture(NamedTuple):
    config: type
    model: type
    root: tuple[str, str]  # graph root and model node names


ARCHITECTURES: dict[str, Architecture] = {
    "gpt2": Architecture(GPT2Config, GPT2, ("gpt2", "transformer")),
    "llama": Architecture(LlamaConfig, Llama, ("llama", "model")),
    "bert": Architecture(BertConfig, Bert, ("bert", "model")),
    "vit": Architecture(ViTConfig, ViT, ("vit", "model")),
}


def _architecture(hf: Mapping, where: str) -> Architecture:
    kind = hf.get("model_type")
    if kind not in ARCHITECTURES:
        raise CheckpointError(MSG_MODEL_TYPE.format(where=where, got=kind, known=sorted(ARCHITECTURES)))
    return ARCHITECTURES[kind]


def config_from_hf(source: str | os.PathLike | Mapping, **overrides: Any) -> Any:
    """The blox config (``GPT2Config``, ``LlamaConfig``, ...) a config.json describes, without any weights.

    Example:
        >>> from blox.models import config_from_hf
        >>> config_from_hf({'model_type': 'gpt2', 'n_layer': 2}).num_layers
        2
    """
    hf, where = read_config(source)
    return _architecture(hf, where).config.from_hf(hf, where, **overrides)


def build_from_config(
    source: str | os.PathLike | Mapping | Any, *, batch: int = 1, seq_len: int | None = None, **overrides: Any
) -> tuple[Module, tuple, dict]:
    """``(model, inputs, kwargs)`` for a config.json, a model folder, a dict, or a blox config; reads no weights.

    ``inputs`` are ``jax.ShapeDtypeStruct``s (token ids ``(batch, seq_len)``, or
    images for ViT) and ``kwargs`` the call's keywords, the same triple an
    ``examples/`` factory returns, so ``jax.eval_shape`` gives the params
    without allocating them. ``overrides`` replace config fields
    (``param_dtype=jnp.bfloat16``, ``scan=True``, ...).

    Example:
        >>> import jax, blox as bx
        >>> from blox.models import build_from_config, count_params
        >>> model, inputs, kwargs = build_from_config({'model_type': 'gpt2'})
        >>> init = lambda ids: model(bx.seed_all(model.graph.root, bx.Params()), ids, **kwargs)[1]
        >>> count_params(jax.eval_shape(init, *inputs)), inputs[0].shape
        (124439808, (1, 1024))
    """
    if dataclasses.is_dataclass(source) and not isinstance(source, type):
        config = dataclasses.replace(source, **overrides) if overrides else source
    else:
        config = config_from_hf(source, **overrides)
    arch = next((a for a in ARCHITECTURES.values() if isinstance(config, a.config)), None)
    if arch is None:
        raise TypeError(
            f"build_from_config: expected a config.json, a folder, a dict or a blox.models config, got {config!r}."
        )
    root, node = arch.root
    model = arch.model(Graph(root) / node, config)
    inputs, kwargs = model.example_inputs(batch, seq_len)
    return model, inputs, kwargs


# --- matching a folder to a model -------------------------------------------------------------------------


@dataclass(frozen=True)
class HFMatch:
    """How the tensors of a folder fit the model its config.json describes.

    ``missing``: ``(stored name, expected shape, blox param)`` the model needs
    and the folder lacks; ``mismatched``: ``(stored name, found shape,
    expected shape, blox param)``; ``unexpected``: ``(stored name, shape)``
    the model has no place for; ``ignored``: names known not to be weights
    (buffers, a tied head stored anyway, heads this model does not have).
    """

    folder: str
    naming: str
    missing: tuple = ()
    mismatched: tuple = ()
    unexpected: tuple = ()
    ignored: tuple = ()

    @property
    def ok(self) -> bool:
        return not (self.missing or self.mismatched or self.unexpected)

    def __str__(self) -> str:
        naming = "PyTorch" if self.naming == "pt" else "Flax"
        lines = [f"{self.folder}: the checkpoint ({naming} naming) does not fit the model its config.json describes."]

        def section(title, rows, fmt, limit=10):
            if rows:
                lines.append(f"  {title} ({len(rows)}):")
                lines.extend("    " + fmt(r) for r in rows[:limit])
                if len(rows) > limit:
                    lines.append(f"    ... and {len(rows) - limit} more")

        section(
            "shape mismatch",
            self.mismatched,
            lambda r: f"{r[0]}: file has {list(r[1])}, config needs {list(r[2])} (for {r[3]})",
        )
        section("missing from the folder", self.missing, lambda r: f"{r[0]} {list(r[1])} (for {r[2]})")
        section("in the folder but not in the model", self.unexpected, lambda r: f"{r[0]} {list(r[1])}")
        lines.append(
            "  Check that config.json belongs to these weights (layer count, widths, heads, vocab) and that the "
            "architecture is the one named by model_type."
        )
        return "\n".join(lines)


class HFMatchError(CheckpointError):
    """A folder's tensor names or shapes do not fit its config.json; ``.match`` holds the details."""

    def __init__(self, match: HFMatch):
        super().__init__(str(match))
        self.match = match


def _naming(folder: Folder) -> str:
    if folder.format in ("pt", "flax"):
        return folder.format
    flax_suffixes = (".kernel", ".embedding", ".scale")
    return "flax" if any(n.endswith(flax_suffixes) for n in folder.tensors) else "pt"


def _canonical(folder: Folder, prefix: str, naming: str) -> dict[str, str]:
    """Stored names without the base-model prefix (and with old aliases renamed) -> the names in the files."""
    out = {}
    for name in folder.tensors:
        key = name[len(prefix) + 1 :] if name.startswith(prefix + ".") else name
        if naming == "pt":
            stem, _, last = key.rpartition(".")
            if last in ALIASES:
                key = f"{stem}.{ALIASES[last]}"
        out[key] = name
    return out


def _entries(model: Module, abstract: Params, scan: bool) -> dict[tuple, list[HFTensor]]:
    """Each blox param path -> its HFTensor (one per layer for a ScanBlocks stack, in layer order)."""
    out: dict[tuple, list[HFTensor]] = {}
    for t in model.hf_tensors():
        out.setdefault(model.path + t.model_path(scan), []).append(t)
    for path, p in abstract.items():
        if p.trainable and path not in out:
            raise AssertionError(f"{type(model).__name__}.hf_tensors has no entry for {path_str(path)}")
    return out


def match(model: Module, abstract: Params, folder: Folder, naming: str, scan: bool) -> tuple[HFMatch, dict]:
    """Compares the folder with what ``model`` needs; returns the report and (param path, layer) -> stored name."""
    prefix = model.HF_PREFIX
    names = _canonical(folder, prefix, naming)
    prefixed = any(n.startswith(prefix + ".") for n in folder.tensors)
    # One stored tensor may hold several params (GPT-2's c_attn): group by stored name, report each once.
    wanted: dict[str, tuple[tuple, bool, list, list]] = {}
    for path, entries in _entries(model, abstract, scan).items():
        shape = tuple(abstract[path].value.shape)
        if scan and entries[0].blocks is not None:
            shape = shape[1:]
        for t in entries:
            key = t.stored_name(naming)
            want, head, wheres, slots = wanted.setdefault(key, (t.stored_shape(shape, naming), t.head, [], []))
            wheres.append(path_str(path) + (f" layer {t.layer}" if scan and t.layer is not None else ""))
            slots.append((path, t.layer))
    missing, mismatched, found = [], [], {}
    for key, (want, head, wheres, slots) in wanted.items():
        where = ", ".join(wheres)
        stored = names.get(key)
        if stored is None:
            missing.append((f"{prefix}.{key}" if prefixed and not head else key, want, where))
            continue
        got = folder.tensors[stored].shape
        if got != want:
            mismatched.append((stored, got, want, where))
        found.update(dict.fromkeys(slots, stored))
    used = {k for k in wanted if k in names}
    patterns = [re.compile(p) for p in model.HF_IGNORED]
    if getattr(model, "lm_head", True) is None:  # a tied head that the folder stores anyway
        patterns.append(re.compile(r"lm_head\.(weight|kernel)"))
    unexpected, ignored = [], []
    for key, stored in sorted(names.items()):
        if key in used:
            continue
        if any(p.fullmatch(key) for p in patterns):
            ignored.append(stored)
        else:
            unexpected.append((stored, folder.tensors[stored].shape))
    report = HFMatch(folder.path, naming, tuple(missing), tuple(mismatched), tuple(unexpected), tuple(ignored))
    return report, found


# --- loading ---------------------------------------------------------------------------------------------


def _stored_dtype(folder: Folder, found: dict) -> Any:
    codes = {folder.tensors[name].dtype for name in found.values()}
    if len(codes) == 1 and next(iter(codes)) in ("BF16", "F16", "F32"):
        return jnp.dtype(DTYPES[next(iter(codes))])
    return jnp.float32


# Larger reads go in pieces of about this size, copied into the result one by one: a read's copy and the
# file pages it maps are then never more than a piece beside the result.
READ_CHUNK = 16 * 2**20


def _aligned_empty(shape: tuple, dtype: Any) -> np.ndarray:
    """An uninitialised array on a 64-byte boundary, which ``jax.device_put`` on CPU adopts without copying."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + 64, np.uint8)
    offset = -raw.ctypes.data % 64
    return raw[offset : offset + nbytes].view(dtype).reshape(shape)


def _reader(path: tuple, tensors: list, found: dict, folder: Folder, naming: str, shape: tuple, stacked: bool, dtype):
    """``read(index) -> np.ndarray``: the block ``param[index]`` of one blox param, from the files, in ``dtype``."""

    def one(t: HFTensor, index: tuple, shape: tuple, out: np.ndarray) -> None:
        name = found[(path, t.layer)]
        stored = folder.tensors[name]
        sindex = t.stored_index(index, shape, naming)
        if sindex is None:  # a reshape: read it whole (small: a patch convolution), then slice
            out[...] = t.to_ours(read(stored.file, name, None), shape, naming)[index]
            return
        rows = sindex[0]
        row_bytes = np.dtype(DTYPES.get(stored.dtype, "float32")).itemsize
        for s, n in zip(sindex[1:], stored.shape[1:]):
            row_bytes *= len(range(*s.indices(n)))
        step = max(1, READ_CHUNK // max(row_bytes, 1))
        perm = t.perm(naming)
        axis = perm.index(0) if perm else 0  # our axis that the stored rows become
        for start in range(rows.start, rows.stop, step):
            stop = min(start + step, rows.stop)
            piece = t.to_ours(read(stored.file, name, (slice(start, stop),) + sindex[1:]), shape, naming)
            dst = [slice(None)] * out.ndim
            dst[axis] = slice(start - rows.start, stop - rows.start)
            out[tuple(dst)] = piece.astype(out.dtype, copy=False)

    def read_index(index: tuple) -> np.ndarray:
        index = tuple(slice(*s.indices(n)) for s, n in zip(index, shape))
        out = _aligned_empty(tuple(len(range(*s.indices(n))) for s, n in zip(index, shape)), dtype)
        if stacked:
            for k, layer in enumerate(range(*index[0].indices(shape[0]))):
                one(tensors[layer], index[1:], shape[1:], out[k])
        else:
            one(tensors[0], index, shape, out)
        return out

    return read_index


def _check_sharding(path: tuple, shape: tuple, spec: tuple, mesh: Any) -> None:
    for dim, axis in enumerate(spec):
        for name in axis if isinstance(axis, tuple) else (axis,):
            if name is None:
                continue
            if name not in mesh.shape:
                raise CheckpointError(
                    MSG_MESH_AXIS.format(path=path_str(path), axis=name, spec=spec, axes=tuple(mesh.axis_names))
                )
        names = [a for a in (axis if isinstance(axis, tuple) else (axis,)) if a is not None]
        n = int(np.prod([mesh.shape[a] for a in names])) if names else 1
        if shape[dim] % n:
            raise CheckpointError(
                MSG_MESH_DIVIDE.format(path=path_str(path), shape=shape, dim=dim, size=shape[dim], axis=axis, n=n)
            )


def from_hf(
    path: str | os.PathLike,
    *,
    dtype: Any = None,
    mesh: Any = None,
    model_axis: str | None = "model",
    scan: bool = False,
    seed: int = 0,
    overrides: Mapping | None = None,
) -> tuple[Module, Params]:
    """Builds the model a Hugging Face folder's config.json describes and loads its weights.

    The folder holds ``config.json`` and ``model.safetensors`` (or shards
    listed by ``model.safetensors.index.json``), in the hub's PyTorch naming
    and layout or in the Flax naming; both are read. Tensors are read one at
    a time, each only while it is copied, so host memory peaks near the size
    of the loaded params.

    Args:
        path: the model folder.
        dtype: the params' dtype, converted while reading (e.g. ``jnp.bfloat16``);
            None keeps the stored dtype (float32 when the files mix dtypes).
        mesh: a ``jax.sharding.Mesh``; each param is then created directly as a
            ``NamedSharding`` from its sharding metadata, every device reading
            only its own slice (nothing is assembled whole on one device).
        model_axis: the mesh axis the kernels' tensor-parallel metadata names
            (None: no sharding metadata, every param replicated).
        scan: run the blocks of GPT-2 and Llama with one ``ScanBlocks`` (params
            stacked per layer).
        seed: seeds the model's Rng (dropout when fine-tuning).
        overrides: config fields to replace (e.g. ``{'dropout_rate': 0.0}``).

    Returns:
        ``(model, params)``, the params locked (a finished model).

    Raises:
        HFMatchError: the folder's tensor names or shapes do not fit config.json;
            the message lists what is missing, mismatched and unexpected.

    Example:
        >>> import tempfile, jax, jax.numpy as jnp, blox as bx
        >>> from blox.models import GPT2, GPT2Config, from_hf, to_hf
        >>> config = GPT2Config(vocab_size=64, max_len=16, width=16, num_layers=1, num_heads=2, mlp_size=32)
        >>> model = GPT2(bx.Graph('gpt2') / 'transformer', config)
        >>> ids = jnp.arange(8)[None]
        >>> run = jax.jit(lambda p, ids: model(p, ids, is_training=False))
        >>> _, params = run(bx.seed_all(model.graph.root, bx.Params()), ids)
        >>> folder = tempfile.mkdtemp()
        >>> _ = to_hf(model, params, folder)
        >>> loaded, loaded_params = from_hf(folder)
        >>> bool(jnp.allclose(run(loaded_params, ids)[0], run(params, ids)[0]))
        True
    """
    folder_path = os.fspath(path)
    hf, where = read_config(folder_path)
    arch = _architecture(hf, where)
    folder = list_tensors(folder_path)
    naming = _naming(folder)
    fields = dict(overrides or {})
    if "model_axis" in {f.name for f in dataclasses.fields(arch.config)}:
        fields.setdefault("model_axis", model_axis)
    if "scan" in {f.name for f in dataclasses.fields(arch.config)}:
        fields.setdefault("scan", scan)
    elif scan:
        raise ValueError(f"from_hf: scan=True is for GPT-2 and Llama; {hf.get('model_type')} has no scanned variant.")
    if "pooler" in {f.name for f in dataclasses.fields(arch.config)} and "pooler" not in fields:
        # Hugging Face's base models may be saved with or without their pooler; follow the folder.
        names = _canonical(folder, arch.model.HF_PREFIX, naming)
        fields["pooler"] = any(k.startswith("pooler.") for k in names)
    config = arch.config.from_hf(hf, where, **fields)
    probe, inputs, kwargs = build_from_config(config)
    abstract = _abstract(probe, inputs, kwargs, seed)
    report, found = match(probe, abstract, folder, naming, config_scan(config))
    if not report.ok:
        raise HFMatchError(report)
    if dtype is None:
        dtype = _stored_dtype(folder, found)
    dtype = jnp.dtype(dtype)
    if jnp.dtype(config.param_dtype) != dtype:
        config = dataclasses.replace(config, param_dtype=dtype)
        probe, inputs, kwargs = build_from_config(config)
        abstract = _abstract(probe, inputs, kwargs, seed)
    model = probe
    rngs = seed_all(model.graph.root, Params(), seed)
    entries = _entries(model, abstract, config_scan(config))
    values = {}
    for p_path, p in abstract.items():
        if p_path in rngs:
            values[p_path] = rngs[p_path]
            continue
        shape = tuple(p.value.shape)
        stacked = LAYERS_KEY in p.metadata
        reader = _reader(p_path, entries[p_path], found, folder, naming, shape, stacked, dtype)
        if mesh is None:
            # The buffer is 64-byte aligned, so on CPU device_put adopts it instead of copying.
            value = jax.device_put(reader(tuple(slice(None) for _ in shape)))
        else:
            spec = tuple(p.sharding or ())
            _check_sharding(p_path, shape, spec, mesh)
            sharding = NamedSharding(mesh, PartitionSpec(*spec))
            value = jax.make_array_from_callback(shape, sharding, reader)
        values[p_path] = Param(value, p.trainable, p.metadata)
    return model, Params(values, locked=True)


def config_scan(config: Any) -> bool:
    return bool(getattr(config, "scan", False))


def _abstract(model: Module, inputs: tuple, kwargs: dict, seed: int) -> Params:
    return jax.eval_shape(lambda *a: model(seed_all(model.graph.root, Params(), seed), *a, **kwargs)[1], *inputs)


# --- saving ----------------------------------------------------------------------------------------------


def to_hf(
    model: Module,
    params: Params,
    folder: str | os.PathLike,
    *,
    dtype: Any = None,
    max_shard_size: int = 5 * 10**9,
) -> list[str]:
    """Writes ``model`` and ``params`` as a Hugging Face folder: config.json plus safetensors in PyTorch naming.

    Tensors use the hub's names and layouts (``q_proj.weight`` as ``[out, in]``,
    GPT-2's fused ``c_attn``), so Hugging Face loaders read the folder. Above
    ``max_shard_size`` bytes the weights are split into
    ``model-0000i-of-0000n.safetensors`` with ``model.safetensors.index.json``.
    Each file is written beside its target and renamed into place; weight files
    of an earlier save that this one does not use are removed afterwards.

    Args:
        model: a ``blox.models`` GPT2, Llama, Bert or ViT.
        params: its params (e.g. from :func:`from_hf`, or fine-tuned).
        folder: the target folder (created if needed; other files in it are kept).
        dtype: cast the weights (e.g. ``jnp.bfloat16``); None keeps theirs.
        max_shard_size: the largest shard in bytes (a bigger tensor gets a shard alone).

    Returns:
        The paths written.

    Example:
        >>> import os, tempfile, jax, jax.numpy as jnp, blox as bx
        >>> from blox.models import Llama, LlamaConfig, to_hf
        >>> model = Llama(bx.Graph('llama') / 'model', LlamaConfig(vocab_size=32, width=8, num_layers=1,
        ...               num_heads=2, mlp_size=16))
        >>> _, params = jax.jit(model)(bx.seed_all(model.graph.root, bx.Params()), jnp.zeros((1, 4), jnp.int32))
        >>> sorted(os.path.basename(p) for p in to_hf(model, params, tempfile.mkdtemp()))
        ['config.json', 'model.safetensors']
    """
    if not hasattr(model, "hf_tensors"):
        raise TypeError(
            MSG_NOT_HF.format(
                got=type(model).__name__, known=", ".join(a.model.__name__ for a in ARCHITECTURES.values())
            )
        )
    scan = config_scan(model.cfg)
    architecture, prefix = model.hf_layout()
    groups: dict[str, list[tuple[HFTensor, tuple]]] = {}
    for t in model.hf_tensors():
        name = t.stored_name("pt")
        if prefix and not t.head:
            name = f"{prefix}.{name}"
        groups.setdefault(name, []).append((t, model.path + t.model_path(scan)))
    cast = None if dtype is None else jnp.dtype(dtype)

    def value(path: tuple, t: HFTensor) -> np.ndarray:
        p = params.get(path)
        if p is None:
            raise CheckpointError(MSG_NO_PARAM.format(path=path_str(path), model=type(model).__name__, name=t.name))
        v = np.asarray(jax.device_get(p.value))
        if scan and t.blocks is not None:
            v = v[t.layer]
        return v if cast is None else v.astype(cast)

    def tensor(name: str) -> np.ndarray:
        parts = sorted(groups[name], key=lambda e: e[0].split[1] if e[0].split else 0)
        return parts[0][0].to_stored([value(path, t) for t, path in parts], "pt")

    def nbytes(name: str) -> int:
        size = 0
        for t, path in groups[name]:
            v = params.get(path)
            if v is None:
                raise CheckpointError(MSG_NO_PARAM.format(path=path_str(path), model=type(model).__name__, name=t.name))
            n = int(np.prod(v.value.shape)) // (v.value.shape[0] if scan and t.blocks is not None else 1)
            size += n * (cast or jnp.dtype(v.value.dtype)).itemsize
        return size

    sizes = {name: nbytes(name) for name in groups}
    shards = plan_shards(sizes.items(), max_shard_size)
    config = model.cfg.to_hf()
    config["architectures"] = [architecture]
    floats = [p.value.dtype for p in params.subtree(model.path).values() if p.trainable]
    config["torch_dtype"] = (cast or jnp.dtype(floats[0] if floats else jnp.float32)).name
    return write_folder(os.fspath(folder), config, shards, tensor, sizes)
