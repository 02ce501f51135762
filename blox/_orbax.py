"""Folder checkpoints through Orbax: Params (and optimizer state) sharded across processes.

A folder checkpoint is an Orbax composite checkpoint with two or three items:

- ``params``: a flat dict ``{path_str: array}`` (a PRNG key array is stored as its ``key_data``),
- ``blox``: JSON: format version, lock state, and per param its path, shape, dtype, key impl,
  trainable flag and metadata (so the folder can be described without touching array data),
- ``state`` (optional): any pytree of arrays saved beside the params, e.g. an optax state, as a flat
  dict keyed by ``jax.tree_util.keystr`` of each leaf's path.

Every process calls save and load (collectively); Orbax writes and reads only the shards each
process holds, and commits by writing into ``<folder>.orbax-checkpoint-tmp`` and renaming it once
every process has finished, so a save that dies half way never looks complete. Orbax is imported
only when a folder checkpoint is used: ``import blox`` stays fast.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ._checkpoint import CheckpointHeader, TensorInfo, check_matches
from ._errors import CheckpointError
from ._params import Param, Params, freeze, thaw
from ._paths import path_str

FORMAT = "blox-orbax"
FORMAT_VERSION = 1
PARAMS_ITEM, STATE_ITEM, BLOX_ITEM = "params", "state", "blox"
# Orbax's names (orbax.checkpoint._src.path.atomicity_types); tests check they still match Orbax.
TMP_SUFFIX = ".orbax-checkpoint-tmp"
COMMIT_FILE = "commit_success.txt"
STEP_METADATA = "_CHECKPOINT_METADATA"
JSON_ITEM_FILE = "metadata"  # the file Orbax's JsonCheckpointHandler writes inside its item folder

MSG_NOT_ADDRESSABLE = (
    "{file}: cannot write {name} into a single safetensors file: it is sharded over {n} processes and this "
    "process (index {index}) holds only some of its shards. A single file needs every array on one host. Save a "
    "folder checkpoint instead, from every process at once: bx.save('{folder}', params) writes each process's "
    "shards through Orbax, and bx.load('{folder}', like=...) restores them (docs/design.md, 'Scaling out'). To "
    "write one file anyway, gather the arrays first with jax.experimental.multihost_utils.process_allgather."
)
MSG_STATE_IN_FILE = (
    "{file}: state= is saved only in folder checkpoints; a .safetensors file holds Params alone. Save to a "
    "folder (a path not ending in .safetensors), e.g. bx.save('{folder}', params, state=opt_state)."
)
MSG_EXISTS = (
    "{folder}: a folder checkpoint is already there. bx.save never replaces a folder: a crash half way through "
    "would lose both the old and the new one. Save each step into its own folder (bx.CheckpointManager numbers "
    "them and keeps the last N), or delete the old folder first."
)
MSG_INCOMPLETE = (
    "{folder}: incomplete checkpoint: its save never committed (a process stopped before every process had "
    "written its shards, or the save is still running). Nothing in it can be trusted. Load the previous complete "
    "checkpoint (bx.CheckpointManager.latest_step() skips incomplete ones) and delete this folder."
)
MSG_NOT_FOUND = (
    "{folder}: no such checkpoint folder or file. Pass the folder bx.save wrote (or a .safetensors file); with "
    "bx.CheckpointManager, manager.path(step) gives a step's folder."
)
MSG_NOT_ORBAX = (
    "{folder}: not a checkpoint folder: there is no {marker} file, which every Orbax checkpoint has. Pass the "
    "folder that bx.save or bx.CheckpointManager wrote."
)
MSG_NOT_BLOX = (
    "{folder}: an Orbax checkpoint, but not one written by blox (no readable {item}/{file}: {why}). blox needs "
    "its own metadata (paths, flags, key impls) to rebuild Params; restore it with orbax.checkpoint directly."
)
MSG_PROCESS_LOCAL = (
    "{folder}: {name} lives on this process's devices only ({devices}), but {n} processes are saving. Each "
    "process would write its own copy under the same name. Put it on the global mesh first, e.g. create the "
    "params with jax.jit(init, out_shardings=bx.param_shardings(abstract, mesh)) or "
    "jax.device_put(x, NamedSharding(mesh, PartitionSpec()))."
)
MSG_NO_STATE = (
    "{folder}: this checkpoint holds no state (it was saved without state=). Load the params with bx.load, or "
    "save with bx.save(folder, params, state=opt_state)."
)
MSG_STATE_LIKE = (
    "bx.load_state needs like=: the state's pytree structure (e.g. jax.eval_shape(optimizer.init, abstract_params), "
    "with shardings set to restore sharded). Got None."
)
MSG_STATE_MISMATCH = "{folder}: the saved state does not match like=."
MSG_KEY_SHARDING = (
    "{where}: cannot restore the PRNG key {name} with a {kind}; blox restores keys into a NamedSharding or a "
    "SingleDeviceSharding. Give that leaf of like= one of those."
)
MSG_BAD_LEAF = "{where}: {name} is a {kind}, which a checkpoint cannot store; every leaf must be an array or a number."


# --- which paths are folders -------------------------------------------------------------------------------


def is_folder(path: str | os.PathLike, *, saving: bool) -> bool:
    """Whether ``bx.save``/``bx.load`` treat ``path`` as a folder checkpoint (else a safetensors file).

    An existing directory is a folder checkpoint (when loading: unless it holds safetensors files and
    no Orbax metadata, as a Hugging Face model folder does), an existing file is a file. A new path is a file when
    its name ends in ``.safetensors`` and a folder otherwise. Loading a path that does not exist is a
    folder when an uncommitted ``<path>.orbax-checkpoint-tmp`` sits beside it, so the error says why.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        if saving or os.path.exists(os.path.join(path, STEP_METADATA)):
            return True
        # A folder of safetensors files (a Hugging Face layout), or an empty one, is for the safetensors
        # reader, whose message lists what a folder must hold.
        names = os.listdir(path)
        return bool(names) and not any(n.endswith((".safetensors", ".safetensors.index.json")) for n in names)
    if os.path.exists(path):
        return False
    if not saving:
        return os.path.isdir(path.rstrip("/\\") + TMP_SUFFIX)
    return not path.endswith(".safetensors")


def refuse_for_file(params: Params, file: str | os.PathLike, state: Any = None) -> None:
    """Clear errors for what a single safetensors file cannot hold: state, or shards on other processes."""
    file = os.fspath(file)
    folder = os.path.splitext(file)[0] or "checkpoint"
    if state is not None:
        raise CheckpointError(MSG_STATE_IN_FILE.format(file=file, folder=folder))
    if not isinstance(params, Params):
        return  # save() reports the wrong type
    for path, param in params.items():
        value = param.value
        if isinstance(value, jax.Array) and not value.is_fully_addressable:
            raise CheckpointError(
                MSG_NOT_ADDRESSABLE.format(
                    file=file, name=path_str(path), n=jax.process_count(), index=jax.process_index(), folder=folder
                )
            )


# --- encoding: Params and state as flat dicts of plain arrays ------------------------------------------------


def _is_key(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key)


def _encode_leaf(folder: str, name: str, value: Any) -> tuple[Any, dict]:
    """``(array Orbax can write, JSON entry describing it)``; a PRNG key becomes its raw data."""
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        value = np.asarray(value)
    if not isinstance(value, (jax.Array, np.ndarray)):
        raise CheckpointError(MSG_BAD_LEAF.format(where=folder, name=name, kind=type(value).__name__))
    if isinstance(value, jax.Array) and jax.process_count() > 1 and value.is_fully_addressable:
        devices = ", ".join(str(d) for d in sorted(value.sharding.device_set, key=lambda d: d.id))
        raise CheckpointError(
            MSG_PROCESS_LOCAL.format(folder=folder, name=name, devices=devices, n=jax.process_count())
        )
    entry = {"name": name, "shape": list(value.shape)}
    if _is_key(value):
        entry["key_impl"] = str(jax.random.key_impl(value))
        entry["dtype"] = str(value.dtype)
        value = jax.random.key_data(value)
    else:
        entry["dtype"] = np.dtype(value.dtype).name
    entry["stored_shape"] = list(value.shape)
    entry["stored_dtype"] = np.dtype(value.dtype).name
    return value, entry


def _json_metadata(folder: str, name: str, param: Param) -> dict:
    try:
        meta = json.loads(json.dumps(thaw(param.metadata)))
    except TypeError as e:
        raise CheckpointError(f"{folder}: {name}: Param metadata must be JSON-serialisable to be saved ({e}).") from e
    if freeze(meta) != param.metadata:
        # e.g. int keys become strings in JSON: refuse rather than load something different.
        raise CheckpointError(
            f"{folder}: {name}: Param metadata {thaw(param.metadata)!r} would not load back unchanged from JSON "
            "(keys must be str; values str, numbers, bools, None, lists or dicts)."
        )
    return meta


def _encode_params(folder: str, params: Params) -> tuple[dict[str, Any], list[dict]]:
    arrays, entries = {}, []
    for path, param in params.items():
        name = path_str(path)
        arrays[name], entry = _encode_leaf(folder, name, param.value)
        entry.update(path=list(path), trainable=param.trainable, metadata=_json_metadata(folder, name, param))
        entries.append(entry)
    return arrays, entries


def _state_leaves(state: Any) -> list[tuple[str, Any]]:
    leaves, _ = jax.tree_util.tree_flatten_with_path(state)
    return [(jax.tree_util.keystr(kp), leaf) for kp, leaf in leaves]


def _encode_state(folder: str, state: Any) -> tuple[dict[str, Any], list[dict]]:
    arrays, entries = {}, []
    for name, leaf in _state_leaves(state):
        arrays[name], entry = _encode_leaf(folder, name, leaf)
        entries.append(entry)
    return arrays, entries


def _abstract(entry: dict) -> jax.ShapeDtypeStruct:
    """The logical value an entry describes (a typed key for key entries), without data."""
    if entry.get("key_impl"):
        raw = jax.ShapeDtypeStruct(tuple(entry["stored_shape"]), jnp.dtype(entry["stored_dtype"]))
        return jax.eval_shape(lambda r: jax.random.wrap_key_data(r, impl=entry["key_impl"]), raw)
    return jax.ShapeDtypeStruct(tuple(entry["shape"]), jnp.dtype(entry["dtype"]))


def _restore_target(where: str, entry: dict, like: Any) -> jax.ShapeDtypeStruct:
    """What Orbax should read for an entry: its stored shape and dtype, in ``like``'s sharding."""
    sharding = getattr(like, "sharding", None)
    if sharding is None:
        # No layout asked for: the whole array on this process's first device (a host-local copy).
        sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    if entry.get("key_impl"):
        sharding = _key_data_sharding(where, entry, sharding)
    return jax.ShapeDtypeStruct(tuple(entry["stored_shape"]), jnp.dtype(entry["stored_dtype"]), sharding=sharding)


def _key_data_sharding(where: str, entry: dict, sharding: Any) -> Any:
    """A key's raw data has trailing words the key itself does not: they stay unsharded."""
    if isinstance(sharding, jax.sharding.SingleDeviceSharding):
        return sharding
    if isinstance(sharding, jax.sharding.NamedSharding):
        spec = tuple(sharding.spec) + (None,) * (len(entry["stored_shape"]) - len(sharding.spec))
        return jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec(*spec))
    raise CheckpointError(MSG_KEY_SHARDING.format(where=where, name=entry["name"], kind=type(sharding).__name__))


def _decode(entry: dict, array: Any) -> Any:
    if entry.get("key_impl"):
        return jax.random.wrap_key_data(array, impl=entry["key_impl"])
    return array


# --- the folder on disk ------------------------------------------------------------------------------------


def is_committed(folder: str) -> bool:
    """Whether Orbax finished (committed) the save of ``folder``: read from its marker files only."""
    if TMP_SUFFIX in os.path.basename(folder.rstrip("/\\")):
        return False
    if os.path.exists(os.path.join(folder, COMMIT_FILE)):
        return True
    try:
        with open(os.path.join(folder, STEP_METADATA), encoding="utf-8") as f:
            return bool(json.load(f).get("commit_timestamp_nsecs"))
    except (OSError, ValueError, AttributeError):
        return False


_ENTRY_FIELDS = frozenset({"name", "path", "shape", "dtype", "stored_shape", "stored_dtype", "trainable"})


def _read_meta(folder: str) -> dict:
    """The blox JSON item of a committed folder checkpoint, with clear errors for everything else."""
    if not os.path.isdir(folder):
        if os.path.isdir(folder.rstrip("/\\") + TMP_SUFFIX):
            raise CheckpointError(MSG_INCOMPLETE.format(folder=folder.rstrip("/\\") + TMP_SUFFIX))
        raise CheckpointError(MSG_NOT_FOUND.format(folder=folder))
    if not os.path.exists(os.path.join(folder, STEP_METADATA)):
        raise CheckpointError(MSG_NOT_ORBAX.format(folder=folder, marker=STEP_METADATA))
    if not is_committed(folder):
        raise CheckpointError(MSG_INCOMPLETE.format(folder=folder))
    file = os.path.join(folder, BLOX_ITEM, JSON_ITEM_FILE)
    try:
        with open(file, encoding="utf-8") as f:
            meta = json.load(f)
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError(f"format is {meta.get('format') if isinstance(meta, dict) else meta!r}, not {FORMAT!r}")
        if int(meta.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(f"format_version {meta['format_version']} is newer than this blox ({FORMAT_VERSION})")
        for e in meta["params"]:
            lacking = _ENTRY_FIELDS - set(e)
            if lacking:
                raise ValueError(f"param entry {e.get('name')!r} lacks {sorted(lacking)}")
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(MSG_NOT_BLOX.format(folder=folder, item=BLOX_ITEM, file=JSON_ITEM_FILE, why=e)) from e
    return meta


def read_header(folder: str | os.PathLike) -> CheckpointHeader:
    """Describes a folder checkpoint from its blox metadata alone: no array is read, Orbax is not imported.

    Returns the same types as ``blox._checkpoint.read_header`` for a safetensors file. ``TensorInfo.offsets``
    place each tensor in a virtual concatenation of the stored bytes (so ``nbytes`` is exact); they are
    not file offsets. ``stored`` is the numpy name of the stored dtype ('uint32' for a key's data), and
    ``data_start`` is 0.

    Example:
        >>> import jax.numpy as jnp, blox as bx, tempfile, os
        >>> folder = os.path.join(tempfile.mkdtemp(), 'ckpt')
        >>> bx.save(folder, bx.Params({('net', 'w'): bx.Param(jnp.ones((2, 3)), trainable=False)}))
        >>> t = read_header(folder).tensors[0]
        >>> t.name, t.shape, t.dtype, t.trainable, t.nbytes
        ('net/w', (2, 3), 'float32', False, 24)
    """
    folder = os.fspath(folder)
    meta = _read_meta(folder)
    tensors, offset = [], 0
    for e in meta["params"]:
        nbytes = math.prod(e["stored_shape"]) * np.dtype(jnp.dtype(e["stored_dtype"])).itemsize
        tensors.append(
            TensorInfo(
                name=e["name"],
                path=tuple(e["path"]),
                shape=tuple(e["shape"]),
                dtype=e["dtype"],
                trainable=bool(e["trainable"]),
                metadata=e.get("metadata", {}),
                offsets=(offset, offset + nbytes),
                key_impl=e.get("key_impl"),
                stored=e["stored_dtype"],
            )
        )
        offset += nbytes
    return CheckpointHeader(folder, bool(meta["locked"]), tensors, 0, True)


def _abstract_params(meta: dict) -> Params:
    return Params(
        {tuple(e["path"]): Param(_abstract(e), e["trainable"], e.get("metadata", {})) for e in meta["params"]},
        locked=bool(meta["locked"]),
    )


# --- save and load -----------------------------------------------------------------------------------------


def _items(folder: str, params: Params, state: Any, metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The Orbax items of one checkpoint, as ``ocp.args`` objects."""
    import orbax.checkpoint as ocp

    if not isinstance(params, Params):
        raise TypeError(f"bx.save expects blox Params, got {type(params).__name__}")
    arrays, entries = _encode_params(folder, params)
    meta: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "locked": params.is_locked,
        "params": entries,
        "state": None,
        "metadata": dict(metadata or {}),
    }
    items = {PARAMS_ITEM: ocp.args.StandardSave(arrays)}
    if state is not None:
        state_arrays, meta["state"] = _encode_state(folder, state)
        items[STATE_ITEM] = ocp.args.StandardSave(state_arrays)
    try:
        json.dumps(meta)
    except TypeError as e:
        raise CheckpointError(f"{folder}: metadata= must be JSON-serialisable ({e}).") from e
    items[BLOX_ITEM] = ocp.args.JsonSave(meta)
    return items


def _checkpointer() -> Any:
    import orbax.checkpoint as ocp

    return ocp.Checkpointer(ocp.CompositeCheckpointHandler())


def save(
    folder: str | os.PathLike, params: Params, *, metadata: Mapping[str, Any] | None = None, state: Any = None
) -> None:
    """Saves a folder checkpoint; every process calls it, each writes only the shards it holds.

    The folder must not exist yet (or be empty): a folder checkpoint is never replaced.
    """
    folder = os.path.abspath(os.fspath(folder))
    force = os.path.isdir(folder)  # is_folder sent only folders and new paths here
    if force and os.listdir(folder):
        raise CheckpointError(MSG_EXISTS.format(folder=folder))
    # An empty folder: Orbax's force only removes it before writing.
    import orbax.checkpoint as ocp

    items = _items(folder, params, state, metadata)
    with _checkpointer() as ckptr:
        ckptr.save(folder, args=ocp.args.Composite(**items), force=force)


def _restore(folder: str, item: str, targets: dict[str, Any]) -> dict[str, Any]:
    import orbax.checkpoint as ocp

    if not targets:
        return {}
    with _checkpointer() as ckptr:
        restored = ckptr.restore(folder, args=ocp.args.Composite(**{item: ocp.args.StandardRestore(targets)}))
    return restored[item]


def load(folder: str | os.PathLike, like: Params | None = None, *, abstract: bool = False) -> Params:
    """Restores a folder checkpoint straight into ``like``'s shardings; every process calls it.

    ``like`` holds ``jax.ShapeDtypeStruct``s (or arrays) whose ``sharding`` says where each param goes:
    any mesh, sharded or not, including one other than the mesh that saved it. A leaf without a
    sharding (and every param when ``like`` is None) comes back whole on this process's first device.
    Paths, shapes and dtypes are checked against ``like`` first. Trainable flags, metadata, lock state
    and PRNG keys (impl included) come from the checkpoint.
    """
    folder = os.path.abspath(os.fspath(folder))
    meta = _read_meta(folder)
    stored = _abstract_params(meta)
    if like is not None:
        check_matches(stored, like, where=folder)
    if abstract:
        return stored
    entries = {e["name"]: e for e in meta["params"]}
    likes = {path_str(p): (like[p].value if like is not None else None) for p in stored}
    targets = {name: _restore_target(folder, e, likes[name]) for name, e in entries.items()}
    arrays = _restore(folder, PARAMS_ITEM, targets)
    data = {}
    for e in meta["params"]:
        data[tuple(e["path"])] = Param(_decode(e, arrays[e["name"]]), e["trainable"], e.get("metadata", {}))
    return Params(data, locked=bool(meta["locked"]))


def load_state(folder: str | os.PathLike, like: Any) -> Any:
    """Restores the ``state`` saved by ``bx.save(folder, params, state=...)`` into ``like``'s structure.

    ``like`` is the state's pytree with ``jax.ShapeDtypeStruct`` (or array) leaves, e.g.
    ``jax.eval_shape(optimizer.init, abstract_trainable)``; each leaf's ``sharding`` says where it goes,
    as in :func:`blox.load`. Every process calls it.

    Example:
        >>> import jax, jax.numpy as jnp, optax, blox as bx, tempfile, os
        >>> params = bx.Params({('net', 'w'): bx.Param(jnp.ones(3))})
        >>> opt = optax.adam(1e-3)
        >>> folder = os.path.join(tempfile.mkdtemp(), 'ckpt')
        >>> bx.save(folder, params, state=opt.init(params))
        >>> state = bx.load_state(folder, like=jax.eval_shape(opt.init, params))
        >>> state[0].mu['net/w'].value.tolist(), int(state[0].count)
        ([0.0, 0.0, 0.0], 0)
    """
    if like is None:
        raise CheckpointError(MSG_STATE_LIKE)
    folder = os.path.abspath(os.fspath(folder))
    meta = _read_meta(folder)
    if meta.get("state") is None:
        raise CheckpointError(MSG_NO_STATE.format(folder=folder))
    entries = {e["name"]: e for e in meta["state"]}
    wanted = _state_leaves(like)
    _check_state(folder, entries, wanted)
    targets = {name: _restore_target(folder, entries[name], leaf) for name, leaf in wanted}
    arrays = _restore(folder, STATE_ITEM, targets)
    leaves = [_decode(entries[name], arrays[name]) for name, _ in wanted]
    return jax.tree.unflatten(jax.tree.structure(like), leaves)


def _check_state(folder: str, entries: dict[str, dict], wanted: list[tuple[str, Any]]) -> None:
    missing = [name for name, _ in wanted if name not in entries]
    extra = sorted(set(entries) - {name for name, _ in wanted})
    wrong = []
    for name, leaf in wanted:
        e = entries.get(name)
        if e is None:
            continue
        got = (tuple(e["shape"]), e["dtype"])
        want = (tuple(leaf.shape), str(leaf.dtype))
        if got != want:
            wrong.append(f"{name}: checkpoint has {got[1]}{list(got[0])}, like= has {want[1]}{list(want[0])}")
    if not (missing or extra or wrong):
        return
    lines = [MSG_STATE_MISMATCH.format(folder=folder)]
    if missing:
        lines.append(f"  missing in checkpoint ({len(missing)}): " + ", ".join(missing[:8]))
    if extra:
        lines.append(f"  not in like= ({len(extra)}): " + ", ".join(extra[:8]))
    lines += ["  " + w for w in wrong[:8]]
    lines.append("Build like= from the same optimizer and the same params as the run that saved it.")
    raise CheckpointError("\n".join(lines))


# --- a series of checkpoints -------------------------------------------------------------------------------

_STEP = re.compile(r"\d+")


class CheckpointManager:
    """Numbered folder checkpoints under one directory: saves in the background, keeps the last N.

    A thin layer over Orbax's ``CheckpointManager``. Each step is an ordinary folder checkpoint at
    ``manager.path(step)``, so ``bx.load``, ``bx.load_state`` and ``blox-inspect`` read it. Every
    process creates the manager and calls :meth:`save` (collectively). With ``async_save`` (the default)
    ``save`` returns once the arrays are copied off the devices and the files are written while
    training continues; the next ``save``, :meth:`wait` and :meth:`close` wait for it. A save that
    never committed (a process died) is ignored by :meth:`steps` and removed when a manager opens
    the directory again.

    Example:
        >>> import jax.numpy as jnp, blox as bx, tempfile
        >>> params = bx.Params({('net', 'w'): bx.Param(jnp.zeros(2))})
        >>> with bx.CheckpointManager(tempfile.mkdtemp(), max_to_keep=2) as manager:
        ...     for step in (1, 2, 3):
        ...         manager.save(step, params.map(lambda _, p: p.value + step))
        ...     manager.wait()
        ...     print(manager.steps(), manager.load()['net/w'].value.tolist())
        [2, 3] [3.0, 3.0]
    """

    def __init__(self, directory: str | os.PathLike, *, max_to_keep: int | None = 3, async_save: bool = True):
        import orbax.checkpoint as ocp

        self.directory = os.path.abspath(os.fspath(directory))
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            enable_async_checkpointing=async_save,
            cleanup_tmp_directories=True,  # half-written steps of a run that died
            create=True,
        )
        self._manager = ocp.CheckpointManager(self.directory, options=options)

    def path(self, step: int) -> str:
        """The folder checkpoint of ``step`` (readable by ``bx.load`` once committed)."""
        return os.path.join(self.directory, str(int(step)))

    def save(self, step: int, params: Params, *, state: Any = None, metadata: Mapping[str, Any] | None = None) -> None:
        """Starts saving ``params`` (and ``state``) as ``step``; every process calls it."""
        import orbax.checkpoint as ocp

        folder = self.path(step)
        if os.path.exists(folder):
            raise CheckpointError(MSG_EXISTS.format(folder=folder))
        items = _items(folder, params, state, metadata)
        self._manager.save(int(step), args=ocp.args.Composite(**items), force=True)

    def wait(self) -> None:
        """Blocks until every started save has committed."""
        self._manager.wait_until_finished()

    def steps(self) -> list[int]:
        """The committed steps on disk, oldest first (an in-flight or broken save is not listed)."""
        if not os.path.isdir(self.directory):
            return []
        names = [n for n in os.listdir(self.directory) if _STEP.fullmatch(n)]
        return sorted(int(n) for n in names if is_committed(os.path.join(self.directory, n)))

    def latest_step(self) -> int | None:
        """The newest committed step, or None."""
        steps = self.steps()
        return steps[-1] if steps else None

    def _step(self, step: int | None) -> int:
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"{self.directory}: no committed checkpoint yet; save one before loading.")
        return step

    def load(self, step: int | None = None, *, like: Params | None = None) -> Params:
        """``bx.load`` of ``step`` (default: the latest committed one)."""
        return load(self.path(self._step(step)), like)

    def load_state(self, step: int | None = None, *, like: Any) -> Any:
        """``bx.load_state`` of ``step`` (default: the latest committed one)."""
        return load_state(self.path(self._step(step)), like)

    def close(self) -> None:
        """Waits for pending saves, then releases Orbax's threads."""
        self._manager.close()

    def __enter__(self) -> CheckpointManager:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
