import pathlib

import jax
import jax.numpy as jnp
import numpy as np

import blox as bx
from blox_inspect.load.model_file import load_model
from examples import resnet50

EXAMPLE = str(pathlib.Path(__file__).resolve().parents[2] / "examples" / "resnet50.py")


def _counts(params: bx.Params) -> tuple[int, int]:
    trainable, rest = params.split()
    stats, _ = rest.split(lambda path, _: path[-1] in ("mean", "var"))
    return sum(p.value.size for p in trainable.values()), sum(p.value.size for p in stats.values())


def test_resnet50_has_the_reference_parameter_count_abstractly():
    loaded = load_model(EXAMPLE)
    assert loaded.kwargs == {"is_training": False}
    assert loaded.inputs == (jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32),)
    params = loaded.abstract_params()
    assert all(isinstance(p.value, jax.ShapeDtypeStruct) for p in params.values())
    trainable, stats = _counts(params)
    assert trainable == 25_557_032
    assert stats == 2 * (64 + sum(w * (1 + 1 + 4) * n + 4 * w for w, n in zip((64, 128, 256, 512), (3, 4, 6, 3))))
    names = {bx.path_str(p) for p in params}
    for name in (
        "net/resnet50/stem/conv/kernel",
        "net/resnet50/stage1/block0/conv1/kernel",
        "net/resnet50/stage1/block0/shortcut/conv/kernel",
        "net/resnet50/stage4/block2/bn3/var",
        "net/resnet50/head/bias",
    ):
        assert name in names
    out = jax.eval_shape(lambda p, x: loaded.apply(p, x)[0], params, *loaded.abstract_inputs())
    assert out.shape == (1, 1000)


def test_resnet18_count_and_a_real_training_mode_forward_of_a_tiny_resnet():
    model, inputs, kwargs = resnet50.build_resnet18()
    init = lambda x: model(bx.seed_all(model.graph.root, bx.Params(), 0), x, **kwargs)[1]
    assert _counts(jax.eval_shape(init, *inputs))[0] == 11_689_512  # the usual ResNet-18 figure

    graph = bx.Graph("net")
    rng = bx.Rng(graph / "rng")
    tiny = resnet50.ResNet(graph / "tiny", resnet50.Bottleneck, (1, 1), rng, num_classes=3, widths=(4, 8))
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 16, 16, 3)), jnp.float32)
    abstract = jax.eval_shape(lambda x: tiny(rng.seed(bx.Params(), 0), x, is_training=True)[1], x)
    # Concrete values from numpy: random init would spend most of this test compiling PRNG code.
    gen = np.random.default_rng(1)
    values = {
        path: bx.Param(jnp.asarray(np.abs(gen.normal(0.0, 0.2, p.value.shape)), jnp.float32), p.trainable)
        for path, p in abstract.items()
        if path[1] != "rng"
    }
    params = rng.seed(bx.Params(values), 0)
    logits, new = jax.jit(lambda p, x: tiny(p, x, is_training=True))(params, x)
    assert logits.shape == (2, 3) and bool(jnp.all(jnp.isfinite(logits)))
    assert set(new) == set(params)
    before, after = params["net/tiny/stem/bn/mean"].value, new["net/tiny/stem/bn/mean"].value
    assert not np.allclose(before, after)  # training mode updates the running statistics
    assert new["net/tiny/stage2/block0/shortcut/conv/kernel"].value.shape == (1, 1, 16, 32)
