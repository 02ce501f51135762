"""The abstract init (``LoadedModel.abstract_params``) against ``jax.eval_shape`` of the model's real init."""

import os

import jax
import jax.numpy as jnp
import pytest

import blox as bx
from blox_inspect import InspectError, load_model, summarize_loaded
from blox_inspect.load.model_file import LoadedModel

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.path.join(ROOT, "tests", "blox_inspect", "models")


def facts(params: bx.Params) -> dict:
    return {path: (p.value.shape, p.value.dtype, p.trainable, p.metadata) for path, p in params.items()}


def reference(loaded: LoadedModel, seed: int = 0) -> bx.Params:
    # The real init, Rng draws and all, under plain jax.eval_shape.
    return jax.eval_shape(lambda *xs: loaded.init(seed, *xs), *loaded.abstract_inputs())


@pytest.mark.parametrize(
    "spec",
    [
        os.path.join(MODELS, "mlp.py"),  # a Dropout draws keys from the Rng in the forward pass too
        os.path.join(MODELS, "scan.py"),  # ScanBlocks: layers initialised under vmap, one key each
        os.path.join(MODELS, "gpt2_small.py"),
        os.path.join(ROOT, "benchmarks", "models", "wide.py:build_1k"),
    ],
)
def test_abstract_params_have_the_shapes_dtypes_and_flags_of_the_real_init(spec):
    loaded = load_model(spec)
    assert facts(loaded.abstract_params()) == facts(reference(loaded))


class BatchRng(bx.Rng):
    """An Rng subclass whose draw is not its seed's shape: it must run as written."""

    def __call__(self, params):
        key, params = super().__call__(params)
        return jax.random.split(key, 3), params


class PerRowInit(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.rng = rng

    def __call__(self, params, x):
        keys, params = self.rng(params)
        w, params = self.get_param(params, "w", keys.shape + x.shape[-1:], jax.nn.initializers.zeros)
        return x * w.sum(0, keepdims=True), params


def test_an_rng_subclass_keeps_its_own_draws():
    g = bx.Graph("net")
    rng = BatchRng(g / "rng")
    loaded = LoadedModel(model=PerRowInit(g / "m", rng), inputs=(jnp.ones((2, 4)),))
    params = loaded.abstract_params()
    assert params["net/m/w"].value.shape == (3, 4)
    assert facts(params) == facts(reference(loaded))


class Noisy(bx.Module):
    def __init__(self, graph, rng):
        super().__init__(graph)
        self.rng = rng

    def __call__(self, params, x):
        key, params = self.rng(params)
        return x + jax.random.normal(key, x.shape), params


def test_an_rng_outside_the_graph_still_fails_with_its_own_message():
    stray = bx.Rng(bx.Graph("other") / "rng")  # seed_all seeds only the model's graph
    loaded = LoadedModel(model=Noisy(bx.Graph("net") / "noisy", stray), inputs=(jnp.ones(3),))
    with pytest.raises(InspectError, match=r"(?s)other/rng \(Rng\) failed while tracing the model's init.*not seeded"):
        summarize_loaded(loaded, xla=False)
