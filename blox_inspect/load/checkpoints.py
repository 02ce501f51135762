"""Checkpoints as inspection data: a lazy tensor reader, a Report built from a header, model matching.

Only the safetensors header is read up front (``blox._checkpoint.read_header``);
a tensor's bytes are read when someone asks for that one tensor.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field

import jax
import numpy as np

from blox._checkpoint import CheckpointHeader, TensorInfo, read_header, read_tensor
from blox._errors import CheckpointError
from blox._gc import gc_paused
from blox._paths import path_str
from blox_inspect.common.errors import InspectError
from blox_inspect.load.inputs import CHECKPOINT, classify
from blox_inspect.report.model import ModuleInfo, ParamInfo, Report, Totals


def is_checkpoint_path(path: str) -> bool:
    """Whether a command's argument names a checkpoint (see :func:`blox_inspect.load.inputs.classify`)."""
    return classify(path) == CHECKPOINT


class CheckpointReader:
    """A checkpoint's header, plus one-tensor-at-a-time reads keyed by path string.

    Example:
        >>> import jax.numpy as jnp, blox as bx, tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), 'c.safetensors')
        >>> bx.save(f, bx.Params({('net', 'w'): bx.Param(jnp.arange(3.0))}))
        >>> r = CheckpointReader(f)
        >>> list(r.tensors), r.read('net/w').tolist()
        (['net/w'], [0.0, 1.0, 2.0])
    """

    def __init__(self, file: str | os.PathLike):
        self.file = os.fspath(file)
        try:
            self.header: CheckpointHeader = read_header(self.file)
        except CheckpointError as e:  # its message names the file and what is wrong; add what to pass if it does not
            message = str(e)
            if "pass " not in message.lower():
                message += " Pass a .safetensors file written by bx.save (or another safetensors writer)."
            raise InspectError(message) from e
        with gc_paused():  # one entry per tensor: 300,000 for some checkpoints, and no cycles
            self.tensors: dict[str, TensorInfo] = {path_str(t.path): t for t in self.header.tensors}
        if len(self.tensors) != len(self.header.tensors):
            seen: set[str] = set()
            for t in self.header.tensors:
                key = path_str(t.path)
                if key in seen:
                    raise InspectError(
                        f"{self.file}: two tensors map to the same path {key!r}; the checkpoint is ambiguous."
                    )
                seen.add(key)

    def _restored(self) -> dict:
        """An Orbax folder's values (restored once, on this process's first device), only when a
        command needs values (``--stats``, ``diff``); structure comes from the metadata alone."""
        if not hasattr(self, "_values"):
            import blox as bx

            params = bx.load(self.file)
            self._values = {
                path: np.asarray(jax.random.key_data(p.value) if self.tensors[path_str(path)].key_impl else p.value)
                for path, p in params.items()
            }
        return self._values

    def __contains__(self, path: str) -> bool:
        return path in self.tensors

    def read(self, path: str) -> np.ndarray:
        """Reads one tensor (PRNG keys come back as their raw uint32 data)."""
        t = self.tensors[path]
        if not t.file and os.path.isdir(self.header.path):
            arr = self._restored()[t.path]  # an Orbax folder: values only by restoring it
        else:
            arr = read_tensor(self.header, t)
        if t.key_impl:
            return arr.reshape(t.shape + (-1,))
        return arr


def _param_info(path: str, t: TensorInfo, module: str) -> ParamInfo:
    # math.prod, not np.prod: exact, and a hundred times cheaper for one small shape (300k tensors).
    # The header's checks keep every tensor under 2**63 bytes, so this is np.prod's int64 value.
    size = int(math.prod(t.shape))
    return ParamInfo(
        path=path,
        module=module,
        name=t.path[-1],
        shape=list(t.shape),
        dtype=t.dtype,
        size=size,
        bytes=t.nbytes,
        trainable=t.trainable,
        metadata=dict(t.metadata),
    )


def report_from_checkpoint(reader: CheckpointReader) -> Report:
    """A Report whose module tree is rebuilt from the checkpoint's path keys.

    Types and FLOPs are unknown (a checkpoint stores no graph); params and bytes
    are exact. When the paths do not share one first name, a root named after
    the file (with path ``""``) holds them.

    Example:
        >>> import jax.numpy as jnp, blox as bx, tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), 'c.safetensors')
        >>> p = bx.Params({('net', 'mlp', 'w'): bx.Param(jnp.ones((2, 3))), ('net', 'b'): bx.Param(jnp.ones(3))})
        >>> bx.save(f, p)
        >>> r = report_from_checkpoint(CheckpointReader(f))
        >>> r.root, [(m.path, m.params) for m in r.modules]
        ('net', [('net', 9), ('net/mlp', 6)])
    """
    with gc_paused():  # a module and a param record per tensor, and no cycles among them
        return _report(reader)


class _ModuleTree:
    """The modules a checkpoint's path keys imply, each made (parents first) when a tensor first needs it.

    A class rather than a recursive closure: a nested function that calls itself holds its own cell, a
    reference cycle that would keep every module (and the whole header) alive until a full collection.
    """

    def __init__(self, root_tuple: tuple[str, ...], root_name: str):
        self.root_tuple = root_tuple
        self.root_name = root_name
        self.modules: dict[str, ModuleInfo] = {}
        self.by_tuple: dict[tuple[str, ...], ModuleInfo] = {}  # the same modules by path tuple: no path_str per lookup

    def get(self, tup: tuple[str, ...]) -> ModuleInfo:
        """The module at ``tup``, made with its missing ancestors on first use."""
        m = self.by_tuple.get(tup)
        return self._add(tup) if m is None else m

    def _add(self, tup: tuple[str, ...]) -> ModuleInfo:
        key = path_str(tup)
        m = self.modules.get(key)
        if m is not None:  # two tuples spelled alike cannot happen (path_str is one to one); kept safe
            self.by_tuple[tup] = m
            return m
        parent = None if tup == self.root_tuple else self.get(tup[:-1])
        m = ModuleInfo(
            path=key,
            path_tuple=list(tup),
            name=tup[-1] if tup else self.root_name,
            type="",
            config={},
            depth=len(tup) - len(self.root_tuple),
            parent=parent.path if parent else None,
            children=[],
            calls=0,
            call_info=[],
            shared=False,
        )
        self.modules[key] = m
        self.by_tuple[tup] = m
        if parent is not None:
            parent.children.append(key)
        return m


def _report(reader: CheckpointReader) -> Report:
    firsts = {t.path[0] for t in reader.tensors.values()}
    single_root = len(firsts) == 1 and all(len(t.path) > 1 for t in reader.tensors.values())
    root_tuple: tuple[str, ...] = (next(iter(firsts)),) if single_root else ()
    tree = _ModuleTree(root_tuple, os.path.basename(reader.file))
    root = tree.get(root_tuple).path
    modules = tree.modules
    params = []
    totals = Totals()
    by_dtype, bytes_by_dtype = totals.params_by_dtype, totals.bytes_by_dtype
    owner, owner_tuple = None, None
    for k, t in reader.tensors.items():
        if t.path[:-1] != owner_tuple:  # tensors of one module usually come together
            owner_tuple = t.path[:-1]
            owner = tree.get(owner_tuple)
        p = _param_info(k, t, owner.path)
        params.append(p)
        owner.param_paths.append(p.path)
        owner.params_own += p.size
        owner.param_bytes_own += p.bytes
        totals.params += p.size
        totals.param_bytes += p.bytes
        by_dtype[p.dtype] = by_dtype.get(p.dtype, 0) + p.size
        bytes_by_dtype[p.dtype] = bytes_by_dtype.get(p.dtype, 0) + p.bytes
        if p.trainable:
            owner.trainable_params_own += p.size
            totals.trainable_params += p.size
    totals.non_trainable_params = totals.params - totals.trainable_params
    # A module is made after its parent (_ModuleTree), so in reverse every child comes before its parent.
    for m in reversed(modules.values()):
        m.params += m.params_own
        m.param_bytes += m.param_bytes_own
        m.trainable_params += m.trainable_params_own
        if m.parent is not None:
            parent = modules[m.parent]
            parent.params += m.params
            parent.param_bytes += m.param_bytes
            parent.trainable_params += m.trainable_params
    return Report(
        model=reader.file,
        root=root,
        inputs=[],
        kwargs={},
        totals=totals,
        modules=list(modules.values()),
        params=params,
        abstract=False,
        notes=["built from a checkpoint: module types, shapes per call and FLOPs are unknown"],
        source="checkpoint",
    )


@dataclass
class CheckpointMismatch:
    """How a checkpoint's params differ from a model's (all keyed by path string)."""

    missing: list[str] = field(default_factory=list)  # the model has it, the checkpoint does not
    extra: list[str] = field(default_factory=list)  # the checkpoint has it, the model does not
    changed: dict[str, str] = field(default_factory=dict)  # path -> what differs

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.changed)

    def summary(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing in checkpoint")
        if self.extra:
            parts.append(f"{len(self.extra)} not in the model")
        if self.changed:
            parts.append(f"{len(self.changed)} with another shape/dtype")
        return ", ".join(parts) or "checkpoint matches the model"

    def problem(self, path: str) -> str | None:
        """What is wrong with one param path, or None."""
        if path in self.changed:
            return self.changed[path]
        if path in self.missing:
            return "missing in the checkpoint"
        if path in self.extra:
            return "in the checkpoint but not in the model"
        return None


@functools.cache
def _key_dtype(dtype: str) -> str:
    """One name per PRNG key dtype: headers say ``key<threefry2x32>`` (the impl), JAX says ``key<fry>``."""
    if not dtype.startswith("key<"):
        return dtype
    try:
        return str(jax.eval_shape(lambda: jax.random.key(0, impl=dtype[4:-1])).dtype)
    except (ValueError, TypeError, KeyError):
        return dtype  # already JAX's short name, or an impl this JAX does not know


def match_checkpoint(report: Report, reader: CheckpointReader) -> CheckpointMismatch:
    """Compares a model Report's params with a checkpoint's tensors.

    Example:
        >>> import jax.numpy as jnp, blox as bx, tempfile, os
        >>> f = os.path.join(tempfile.mkdtemp(), 'c.safetensors')
        >>> bx.save(f, bx.Params({('net', 'w'): bx.Param(jnp.ones(3))}))
        >>> r = CheckpointReader(f)
        >>> model = report_from_checkpoint(r)
        >>> model.params[0].shape = [4]
        >>> m = match_checkpoint(model, r)
        >>> m.changed, m.summary()
        ({'net/w': 'checkpoint has float32[3], model needs float32[4]'}, '1 with another shape/dtype')
    """
    out = CheckpointMismatch()
    known = set()
    for p in report.params:
        known.add(p.path)
        t = reader.tensors.get(p.path)
        if t is None:
            out.missing.append(p.path)
        elif list(t.shape) != list(p.shape) or _key_dtype(t.dtype) != _key_dtype(p.dtype):
            got = f"{t.dtype}[{','.join(map(str, t.shape))}]"
            want = f"{p.dtype}[{','.join(map(str, p.shape))}]"
            out.changed[p.path] = f"checkpoint has {got}, model needs {want}"
    out.extra = [k for k in reader.tensors if k not in known]
    return out
