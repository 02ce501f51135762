import jax
import jax.numpy as jnp
import numpy as np
import pytest

import blox as bx

NHWC = ("NHWC", "HWIO", "NHWC")


def np_init(seed=0):
    # numpy draws keep these tests free of PRNG compilation, which dominates their run time on CPU.
    gen = np.random.default_rng(seed)
    return lambda key, shape, dtype=jnp.float32: jnp.asarray(gen.normal(0.0, 0.5, shape), dtype)


def _conv(kernel_size, features, **kw):
    cls = kw.pop("cls", bx.Conv)
    kw.setdefault("kernel_init", np_init(0))
    return cls(bx.Graph("net") / "conv", kernel_size, features, **kw), bx.Params()


def _x(shape, seed=1):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


def _np_conv1d(x, w, b, stride, pads, in_dil, k_dil):
    """Loop reference for one batch-free 1-D conv: x (L, C), w (K, C, O)."""
    length, channels = x.shape
    spread = np.zeros(((length - 1) * in_dil + 1, channels), np.float64)
    spread[::in_dil] = x
    padded = np.concatenate([np.zeros((pads[0], channels)), spread, np.zeros((pads[1], channels))])
    span = (w.shape[0] - 1) * k_dil + 1
    out = []
    for start in range(0, padded.shape[0] - span + 1, stride):
        window = padded[start : start + span : k_dil]
        out.append(np.einsum("kc,kco->o", window, w) + b)
    return np.array(out)


@pytest.mark.parametrize(
    "padding,stride,in_dil,k_dil",
    [("VALID", 1, 1, 1), ("SAME", 2, 1, 1), (((2, 1),), 1, 2, 1), (1, 3, 1, 2), ("SAME", 1, 2, 2)],
)
def test_conv1d_matches_loop_reference(padding, stride, in_dil, k_dil):
    conv, params = _conv(
        (3,),
        4,
        strides=stride,
        padding=padding,
        input_dilation=in_dil,
        kernel_dilation=k_dil,
        bias_init=np_init(1),
    )
    x = _x((2, 9, 3))
    y, params = conv(params, x)
    w = np.asarray(params["net/conv/kernel"].value, np.float64)
    b = np.asarray(params["net/conv/bias"].value, np.float64)
    dilated = (9 - 1) * in_dil + 1
    span = 2 * k_dil + 1
    if padding == "SAME":
        total = max((-(-dilated // stride) - 1) * stride + span - dilated, 0)
        pads = (total // 2, total - total // 2)
    elif padding == "VALID":
        pads = (0, 0)
    elif isinstance(padding, int):
        pads = (padding, padding)
    else:
        pads = padding[0]
    want = np.stack([_np_conv1d(np.asarray(x[i], np.float64), w, b, stride, pads, in_dil, k_dil) for i in range(2)])
    np.testing.assert_allclose(np.asarray(y), want, rtol=1e-5, atol=1e-5)
    if padding == "SAME":
        assert y.shape[1] == -(-dilated // stride)


def test_conv2d_matches_lax_with_groups_and_leading_batch_axes():
    conv, params = _conv((3, 2), 6, strides=(2, 1), padding="SAME", kernel_dilation=(1, 2), feature_group_count=2)
    x = _x((2, 3, 7, 8, 4))
    y, params = conv(params, x)
    kernel = params["net/conv/kernel"].value
    assert kernel.shape == (3, 2, 2, 6)
    want = jax.lax.conv_general_dilated(
        x.reshape(6, 7, 8, 4),
        kernel,
        (2, 1),
        "SAME",
        rhs_dilation=(1, 2),
        dimension_numbers=NHWC,
        feature_group_count=2,
    )
    assert y.shape == (2, 3, 4, 8, 6)
    np.testing.assert_allclose(y, want.reshape(2, 3, 4, 8, 6), rtol=1e-5, atol=1e-5)


def test_conv_unbatched_and_3d_shapes():
    conv, params = _conv((3, 3), 5)
    y, params = conv(params, _x((6, 6, 2)))
    assert y.shape == (6, 6, 5)
    batched, _ = conv(params, _x((6, 6, 2))[None])
    np.testing.assert_allclose(batched[0], y, rtol=1e-6)
    conv3, params3 = _conv((2, 2, 2), 3, strides=2, padding="VALID", use_bias=False)
    y3, params3 = conv3(params3, _x((1, 4, 6, 8, 2)))
    assert y3.shape == (1, 2, 3, 4, 3)
    assert "net/conv/bias" not in params3


def test_conv_gradients_match_lax():
    conv, params = _conv((3, 3), 4, strides=2, padding=((1, 0), (2, 1)), feature_group_count=2, bias_init=np_init(1))
    x = _x((2, 6, 5, 4))
    _, params = conv(params, x)
    kernel, bias = params["net/conv/kernel"].value, params["net/conv/bias"].value

    def ours(k, b, x):
        p = params.set(("net", "conv", "kernel"), bx.Param(k)).set(("net", "conv", "bias"), bx.Param(b))
        return jnp.sum(jnp.sin(conv(p, x)[0]))

    def ref(k, b, x):
        y = jax.lax.conv_general_dilated(x, k, (2, 2), ((1, 0), (2, 1)), dimension_numbers=NHWC, feature_group_count=2)
        return jnp.sum(jnp.sin(y + b.reshape(1, 1, 1, -1)))

    got = jax.grad(ours, argnums=(0, 1, 2))(kernel, bias, x)
    want = jax.grad(ref, argnums=(0, 1, 2))(kernel, bias, x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_conv_transpose_gradients_match_lax():
    conv, params = _conv((3, 3), 4, cls=bx.ConvTranspose, strides=2, padding="SAME", use_bias=False)
    x = _x((2, 3, 4, 2))
    _, params = conv(params, x)

    def ours(k, x):
        return jnp.sum(jnp.sin(conv(params.set(("net", "conv", "kernel"), bx.Param(k)), x)[0]))

    def ref(k, x):
        return jnp.sum(jnp.sin(jax.lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=NHWC)))

    kernel = params["net/conv/kernel"].value
    got = jax.jit(jax.grad(ours, argnums=(0, 1)))(kernel, x)
    want = jax.jit(jax.grad(ref, argnums=(0, 1)))(kernel, x)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("padding", ["SAME", "VALID", ((1, 2), (0, 1))])
def test_conv_transpose_matches_lax(padding):
    conv, params = _conv((3, 2), 5, cls=bx.ConvTranspose, strides=(2, 3), padding=padding, kernel_dilation=(2, 1))
    x = _x((2, 4, 5, 3))
    y, params = conv(params, x)
    want = jax.lax.conv_transpose(
        x, params["net/conv/kernel"].value, (2, 3), padding, rhs_dilation=(2, 1), dimension_numbers=NHWC
    )
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    if padding == "SAME":
        assert y.shape == (2, 8, 15, 5)


def test_grouped_conv_transpose_matches_per_group_loop():
    groups = 3
    conv, params = _conv((3, 3), 6, cls=bx.ConvTranspose, strides=2, padding="SAME", feature_group_count=groups)
    x = _x((2, 4, 4, 9))
    y, params = conv(params, x)
    kernel = params["net/conv/kernel"].value
    assert kernel.shape == (3, 3, 3, 6)
    parts = []
    for g in range(groups):
        xg = x[..., 3 * g : 3 * g + 3]
        kg = kernel[..., 2 * g : 2 * g + 2]
        parts.append(jax.lax.conv_transpose(xg, kg, (2, 2), "SAME", dimension_numbers=NHWC))
    np.testing.assert_allclose(y, jnp.concatenate(parts, axis=-1), rtol=1e-5, atol=1e-5)


def test_grouped_conv_transpose_is_the_adjoint_of_a_grouped_conv():
    # The vjp of a strided grouped conv w.r.t. its input is a ConvTranspose whose kernel is the
    # conv kernel flipped in space with input/output channels swapped inside each group.
    groups, cin, cout, k = 2, 4, 6, 3
    w = _x((k, k, cin // groups, cout), seed=3)
    x = _x((1, 9, 9, cin), seed=4)
    conv = lambda x: jax.lax.conv_general_dilated(
        x, w, (2, 2), "VALID", dimension_numbers=NHWC, feature_group_count=groups
    )
    y, vjp = jax.vjp(conv, x)
    cot = _x(y.shape, seed=5)
    (want,) = vjp(cot)
    w5 = w.reshape(k, k, cin // groups, groups, cout // groups)
    kt = jnp.transpose(w5, (0, 1, 4, 3, 2)).reshape(k, k, cout // groups, cin)[::-1, ::-1]
    tconv, params = _conv(
        (k, k), cin, cls=bx.ConvTranspose, strides=2, padding="VALID", feature_group_count=groups, use_bias=False
    )
    params = params.set(("net", "conv", "kernel"), bx.Param(kt))
    got, _ = tconv(params, cot)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_conv_metadata_and_config():
    conv, params = _conv((1,), 2, kernel_metadata={"sharding": (None, None, "model")})
    _, params = conv(params, _x((3, 4, 1)))
    assert params["net/conv/kernel"].sharding == (None, None, "model")
    assert conv.config["kernel_size"] == (1,)


def test_conv_errors_name_the_module_and_shapes():
    conv, params = _conv((3, 3), 4, padding="VALID")
    with pytest.raises(
        bx.ShapeError, match=r"net/conv \(Conv\): expected input \(\*batch, s0, s1, channels\).*got shape \(5, 5\)"
    ):
        conv(params, jnp.ones((5, 5)))
    with pytest.raises(
        bx.ShapeError,
        match=r"net/conv \(Conv\): the kernel spans 3 positions along spatial axis 1.*only 2.*\(1, 4, 2, 3\)",
    ):
        conv(params, jnp.ones((1, 4, 2, 3)))
    _, params = conv(params, jnp.ones((1, 4, 4, 3)))
    with pytest.raises(
        bx.ShapeError,
        match=r"net/conv \(Conv\): the kernel was built for 3 input channels but this input has 5 \(input shape \(1, 4, 4, 5\)\)",
    ):
        conv(params, jnp.ones((1, 4, 4, 5)))
    grouped, gparams = _conv((3,), 4, feature_group_count=2)
    with pytest.raises(
        bx.ShapeError,
        match=r"net/conv \(Conv\): the input's 3 channels \(input shape \(2, 5, 3\)\) must be divisible by feature_group_count=2",
    ):
        grouped(gparams, jnp.ones((2, 5, 3)))
    with pytest.raises(
        bx.ShapeError,
        match=r"net/conv \(ConvTranspose\): output_channels=5 must be divisible by feature_group_count=2",
    ):
        _conv((3,), 5, cls=bx.ConvTranspose, feature_group_count=2)
    up, uparams = _conv((4,), 2, cls=bx.ConvTranspose, strides=2, padding=((-2, -2),))
    with pytest.raises(bx.ShapeError, match=r"net/conv \(ConvTranspose\): the kernel spans 4 positions .* only 1"):
        up(uparams, jnp.ones((1, 3, 1)))
    with pytest.raises(TypeError, match=r"kernel_size must be a tuple.*\(3, 3\)"):
        _conv(3, 4)
    with pytest.raises(ValueError, match=r"padding must be 'SAME', 'VALID'"):
        _conv((3,), 4, padding="FULL")
