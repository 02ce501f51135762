"""Loading tier: run a user's model file, find its factory, build abstract inputs and Params."""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any

import jax

import blox as bx
from blox._rng import seed_all
from blox_inspect.common.errors import InspectError
from blox_inspect.load.inputs import HF_MODEL_FOLDER, classify

DEFAULT_FACTORY = "build"


MSG_EXITED = (
    "{path}: the model file exited with status {code} while being {when} (it called sys.exit). "
    "blox-inspect runs the model file's code: keep script code under `if __name__ == '__main__':`."
)


@dataclass
class LoadedModel:
    """What a model file's factory returned, ready for abstract tracing."""

    model: bx.Module
    inputs: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    source: str = "<python>"
    # Optional per-model settings a model file may declare (e.g. BLOX_CHECK_IGNORE).
    file_settings: dict[str, Any] = field(default_factory=dict)

    @property
    def graph(self) -> bx.Graph:
        return self.model.graph.root

    def abstract_inputs(self) -> tuple[jax.ShapeDtypeStruct, ...]:
        return tuple(jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), self.inputs))

    def init(self, seed: int = 0, *inputs: Any) -> bx.Params:
        """Concrete init: seeds every Rng, runs the model once, returns locked Params."""
        params = seed_all(self.graph, bx.Params(), seed)
        _, params = self.model(params, *(inputs or self.inputs), **self.kwargs)
        return params.locked()

    def abstract_params(self, seed: int = 0) -> bx.Params:
        """Params built under ``jax.eval_shape``: full structure, nothing allocated."""
        with bx.shape_only():
            return jax.eval_shape(lambda *xs: self.init(seed, *xs), *self.abstract_inputs())

    def apply(self, params: bx.Params, *inputs: Any) -> tuple[Any, bx.Params]:
        return self.model(params, *inputs, **self.kwargs)


def split_spec(spec: str) -> tuple[str, str | None]:
    """``'path/model.py:NAME'`` -> ``('path/model.py', 'NAME')``."""
    head, sep, tail = spec.rpartition(":")
    if sep and head.endswith(".py") and tail.isidentifier():
        return head, tail
    return spec, None


def import_file(path: str) -> Any:
    """Imports a Python file as a fresh module, with its folder on sys.path while it runs."""
    if not os.path.exists(path):
        raise InspectError(f"{path}: no such file. Pass the path of a Python file that defines a model factory.")
    if not path.endswith(".py"):
        raise InspectError(f"{path}: expected a Python file ending in .py.")
    folder = os.path.dirname(os.path.abspath(path))
    stem = os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    digest = hashlib.sha1(os.path.abspath(path).encode()).hexdigest()[:8]
    name = f"_blox_model_{stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered like a normal import: dataclasses, typing.get_type_hints and pickle look the
    # module up in sys.modules while the file runs and afterwards.
    sys.modules[name] = module
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except SystemExit as e:
        sys.modules.pop(name, None)
        raise InspectError(MSG_EXITED.format(path=path, code=e.code, when="imported")) from None
    except SyntaxError as e:
        sys.modules.pop(name, None)
        raise InspectError(f"{e.filename}:{e.lineno}: syntax error in the model file: {e.msg}.") from e
    except Exception as e:
        sys.modules.pop(name, None)
        raise InspectError(f"{path}: importing the model file raised {type(e).__name__}: {e}\n{_user_frames(e)}") from e
    finally:
        if added:
            sys.path.remove(folder)
    return module


def _user_frames(e: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if "blox_inspect" not in f.filename]
    return "".join(traceback.format_list(frames[-3:])).rstrip()


def load_model(spec: str) -> LoadedModel:
    """Loads ``file.py`` or ``file.py:factory`` and calls the factory.

    The factory takes no required arguments and returns ``(model, inputs)`` or
    ``(model, inputs, kwargs)``.
    """
    path, name = split_spec(spec)
    if classify(path) == HF_MODEL_FOLDER:
        return load_hf_folder(path)
    module = import_file(path)
    factory_name = name or DEFAULT_FACTORY
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        seen = sorted(
            k
            for k, v in vars(module).items()
            if callable(v) and not k.startswith("_") and getattr(v, "__module__", None) == module.__name__
        )
        near = difflib.get_close_matches(factory_name, seen, n=1)
        hint = f" Did you mean {path}:{near[0]}?" if near else ""
        raise InspectError(
            f"{path}: no factory named {factory_name!r}. Expected a function that takes no arguments and returns "
            f"(model, inputs) or (model, inputs, kwargs). Callables defined in the file: "
            f"{', '.join(seen) or 'none'}.{hint} Name one with {path}:NAME."
        )
    try:
        result = factory()
    except SystemExit as e:
        raise InspectError(MSG_EXITED.format(path=f"{path}:{factory_name}()", code=e.code, when="built")) from None
    except Exception as e:
        raise InspectError(f"{path}:{factory_name}() raised {type(e).__name__}: {e}\n{_user_frames(e)}") from e
    loaded = coerce_factory_result(result, f"{path}:{factory_name}")
    loaded.file_settings = {k: v for k, v in vars(module).items() if k.startswith("BLOX_")}
    return loaded


def load_hf_folder(folder: str) -> LoadedModel:
    """A Hugging Face model folder: the architecture and sizes from its config.json, no weights read."""
    from blox.models import build_from_config

    try:
        result = build_from_config(folder)
    except bx.BloxError as e:
        raise InspectError(f"{folder}: {e}") from e
    except (ValueError, KeyError, TypeError) as e:
        raise InspectError(
            f"{folder}/config.json: cannot build a blox model from it ({type(e).__name__}: {e}). "
            "blox.models reads GPT-2, Llama, BERT and ViT configs (docs/models.md)."
        ) from e
    return coerce_factory_result(result, f"{folder}/config.json")


def coerce_factory_result(result: Any, where: str) -> LoadedModel:
    """Validates ``(model, inputs[, kwargs])`` and wraps it in a LoadedModel."""
    if not isinstance(result, tuple) or len(result) not in (2, 3):
        raise InspectError(
            f"{where} returned {_describe(result)}; expected a tuple (model, inputs) or (model, inputs, kwargs)."
        )
    model, inputs = result[0], result[1]
    kwargs = result[2] if len(result) == 3 else {}
    if not isinstance(model, bx.Module):
        raise InspectError(f"{where}: the first item must be a blox Module, got {_describe(model)}.")
    if not isinstance(inputs, (tuple, list)):
        inputs = (inputs,)
    for i, x in enumerate(jax.tree.leaves(tuple(inputs))):
        if not hasattr(x, "shape") or not hasattr(x, "dtype"):
            raise InspectError(
                f"{where}: input {i} is {_describe(x)}; inputs must be arrays or jax.ShapeDtypeStruct "
                "(e.g. jax.ShapeDtypeStruct((1, 128), jnp.int32))."
            )
    if not isinstance(kwargs, dict):
        raise InspectError(f"{where}: the third item (call kwargs) must be a dict, got {_describe(kwargs)}.")
    return LoadedModel(model=model, inputs=tuple(inputs), kwargs=dict(kwargs), source=where)


def _describe(x: Any) -> str:
    if isinstance(x, tuple):
        return f"a tuple of {len(x)} item(s)"
    return f"{type(x).__name__}"
