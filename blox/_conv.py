"""Convolutions: Conv and ConvTranspose, N-D and channels-last."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from ._errors import ShapeError
from ._graph import Graph
from ._linear import kernel_and_bias
from ._module import Module, add_lead
from ._params import Params
from ._paths import path_str


def default_kernel_init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
    """``jax.nn.initializers.lecun_normal()`` for a ``(*window, in, out)`` kernel, drawn as one flat vector.

    The values equal lecun_normal's (the default threefry draws each element from
    its flat index), but XLA compiles a 1-D draw several times faster than an N-D
    one, which dominates the first call of a convolutional model on CPU.
    """
    fan_in = math.prod(shape[:-1])
    # 0.8796... is the std of a unit normal truncated to [-2, 2], as in jax's variance_scaling.
    std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
    flat = jax.random.truncated_normal(key, -2.0, 2.0, (math.prod(shape),), dtype)
    return jnp.reshape(flat * std, shape)


Padding = str | int | Sequence[int] | Sequence[tuple[int, int]]

MSG_RANK = (
    "{where} ({type}): expected input (*batch, {spatial}, channels) with at least {need} axes for a "
    "{n}-D kernel {kernel}, got shape {shape}. Channels go last; add a channel axis with x[..., None]."
)
MSG_CHANNELS = (
    "{where} ({type}): the kernel was built for {want} input channels but this input has {got} "
    "(input shape {shape}). Channels go last; check the previous layer's width or rebuild params."
)
MSG_TOO_SMALL = (
    "{where} ({type}): the kernel spans {span} positions along spatial axis {axis} but the padded "
    "input has only {size} (input shape {shape}, kernel {kernel}, padding {padding!r}). Use "
    "padding='SAME', a smaller kernel or kernel_dilation, or a larger input."
)
MSG_GROUPS = (
    "{where} ({type}): {what} must be divisible by feature_group_count={groups}. "
    "Pick a group count that divides both the input and output channel counts."
)


def _tuple(value: int | Sequence[int], n: int, name: str, where: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{where}: {name} needs one entry per spatial axis ({n}), got {value}.")
    return value


def normalize_padding(padding: Padding, n: int, where: str) -> str | tuple[tuple[int, int], ...]:
    """``'SAME'``/``'VALID'`` stay strings; an int or per-axis ints/pairs become ``n`` (lo, hi) pairs."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode not in ("SAME", "VALID"):
            raise ValueError(f"{where}: padding must be 'SAME', 'VALID', an int or per-axis pairs, got {padding!r}.")
        return mode
    if isinstance(padding, int):
        return ((padding, padding),) * n
    pads = tuple(padding)
    if len(pads) != n:
        raise ValueError(f"{where}: padding needs one entry per spatial axis ({n}), got {padding!r}.")
    out = []
    for p in pads:
        if isinstance(p, int):
            out.append((p, p))
        else:
            lo, hi = p
            out.append((int(lo), int(hi)))
    return tuple(out)


def same_pads(sizes, windows, strides) -> tuple[tuple[int, int], ...]:
    """Pads so that ``out = ceil(size / stride)``, the extra one going after (as in lax)."""
    pads = []
    for size, win, s in zip(sizes, windows, strides):
        out = -(-size // s)
        total = max((out - 1) * s + win - size, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def _transpose_pads(windows, strides, padding) -> tuple[tuple[int, int], ...]:
    # The pads of lax.conv_transpose: SAME gives out = in * stride, VALID
    # gives out = in * stride + max(window - stride, 0).
    pads = []
    for k, s in zip(windows, strides):
        if padding == "SAME":
            total = k + s - 2
            lo = k - 1 if s > k - 1 else -(-total // 2)
        else:
            total = k + s - 2 + max(k - s, 0)
            lo = k - 1
        pads.append((lo, total - lo))
    return tuple(pads)


def _dimension_numbers(n: int) -> jax.lax.ConvDimensionNumbers:
    # Channels-last input/output and a (*window, in, out) kernel, for any n.
    spatial = tuple(range(1, n + 1))
    return jax.lax.ConvDimensionNumbers(
        lhs_spec=(0, n + 1) + spatial, rhs_spec=(n + 1, n) + tuple(range(n)), out_spec=(0, n + 1) + spatial
    )


class _ConvBase(Module):
    def __init__(
        self,
        graph: Graph,
        kernel_size: Sequence[int],
        output_channels: int,
        rng: Module | None = None,
        strides: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        kernel_dilation: int | Sequence[int] = 1,
        feature_group_count: int = 1,
        use_bias: bool = True,
        kernel_init: Callable = default_kernel_init,
        bias_init: Callable = jax.nn.initializers.zeros,
        kernel_metadata: Mapping | None = None,
        bias_metadata: Mapping | None = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
    ):
        super().__init__(graph)
        where = f"{path_str(graph.path)} ({type(self).__name__})"
        if isinstance(kernel_size, int):
            raise TypeError(
                f"{where}: kernel_size must be a tuple with one entry per spatial axis, e.g. (3, 3) for "
                f"images or (3,) for sequences; got the int {kernel_size}."
            )
        self.kernel_size = tuple(int(k) for k in kernel_size)
        n = len(self.kernel_size)
        self.output_channels = int(output_channels)
        self.rng = rng
        self.strides = _tuple(strides, n, "strides", where)
        self.padding = normalize_padding(padding, n, where)
        self.kernel_dilation = _tuple(kernel_dilation, n, "kernel_dilation", where)
        self.feature_group_count = int(feature_group_count)
        if self.output_channels % self.feature_group_count:
            raise ShapeError(
                MSG_GROUPS.format(
                    where=path_str(graph.path),
                    type=type(self).__name__,
                    what=f"output_channels={self.output_channels}",
                    groups=self.feature_group_count,
                )
            )
        self.use_bias = use_bias
        self.kernel_init = kernel_init
        self.bias_init = bias_init
        self.kernel_metadata = kernel_metadata
        self.bias_metadata = bias_metadata
        self.param_dtype = param_dtype
        self.precision = precision

    def _fmt(self) -> dict[str, str]:
        return {"where": path_str(self.path), "type": type(self).__name__}

    def _flatten_input(self, params: Params, x: jax.Array) -> tuple[jax.Array, tuple[int, ...], int]:
        """Checks the input and folds its leading batch axes into one (adding one when unbatched)."""
        n = len(self.kernel_size)
        shape = tuple(jnp.shape(x))
        if len(shape) < n + 1:
            raise ShapeError(
                MSG_RANK.format(
                    **self._fmt(),
                    spatial=", ".join(f"s{i}" for i in range(n)),
                    need=n + 1,
                    n=n,
                    kernel=self.kernel_size,
                    shape=shape,
                )
            )
        channels = shape[-1]
        groups = self.feature_group_count
        if channels % groups:
            raise ShapeError(
                MSG_GROUPS.format(
                    **self._fmt(), what=f"the input's {channels} channels (input shape {shape})", groups=groups
                )
            )
        found = params.get(self.param_path("kernel"))
        if found is not None and found.value.shape[n] * groups != channels:
            raise ShapeError(
                MSG_CHANNELS.format(**self._fmt(), want=found.value.shape[n] * groups, got=channels, shape=shape)
            )
        batch = shape[: len(shape) - n - 1]
        return jnp.reshape(x, (math.prod(batch),) + shape[len(batch) :]), batch, channels

    def _params(self, params: Params, channels: int) -> tuple[jax.Array, jax.Array | None, Params]:
        shape = self.kernel_size + (channels // self.feature_group_count, self.output_channels)
        return kernel_and_bias(self, params, shape)

    def _check_fits(self, sizes, spans, pads, shape: tuple[int, ...]) -> None:
        for axis, (size, span, (lo, hi)) in enumerate(zip(sizes, spans, pads)):
            if size + lo + hi < span:
                raise ShapeError(
                    MSG_TOO_SMALL.format(
                        **self._fmt(),
                        span=span,
                        axis=axis,
                        size=size + lo + hi,
                        shape=shape,
                        kernel=self.kernel_size,
                        padding=self.padding,
                    )
                )

    def _finish(self, y: jax.Array, bias: jax.Array | None, batch: tuple[int, ...]) -> jax.Array:
        if bias is not None:
            y = add_lead(y, bias)
        return jnp.reshape(y, batch + y.shape[1:])


class Conv(_ConvBase):
    """An N-D convolution over channels-last input; N is ``len(kernel_size)``.

    The input is ``(*batch, *spatial, channels)`` with any number of leading
    batch axes, none included (an unbatched input). The kernel has shape
    ``(*kernel_size, channels // feature_group_count, output_channels)``.
    ``padding`` is ``'SAME'`` (output size ``ceil(input / stride)``, taking
    ``input_dilation`` into account), ``'VALID'``, an int, or one int or
    ``(low, high)`` pair per spatial axis.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> conv = bx.Conv(g / 'conv', (3, 3), 8, rng, strides=2)
        >>> y, params = conv(rng.seed(bx.Params(), 0), jnp.ones((2, 5, 16, 16, 3)))
        >>> y.shape, params['net/conv/kernel'].value.shape
        ((2, 5, 8, 8, 8), (3, 3, 3, 8))
    """

    def __init__(
        self,
        graph: Graph,
        kernel_size: Sequence[int],
        output_channels: int,
        rng: Module | None = None,
        strides: int | Sequence[int] = 1,
        padding: Padding = "SAME",
        input_dilation: int | Sequence[int] = 1,
        kernel_dilation: int | Sequence[int] = 1,
        feature_group_count: int = 1,
        use_bias: bool = True,
        kernel_init: Callable = default_kernel_init,
        bias_init: Callable = jax.nn.initializers.zeros,
        kernel_metadata: Mapping | None = None,
        bias_metadata: Mapping | None = None,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
    ):
        super().__init__(
            graph,
            kernel_size,
            output_channels,
            rng,
            strides,
            padding,
            kernel_dilation,
            feature_group_count,
            use_bias,
            kernel_init,
            bias_init,
            kernel_metadata,
            bias_metadata,
            param_dtype,
            precision,
        )
        self.input_dilation = _tuple(input_dilation, len(self.kernel_size), "input_dilation", path_str(graph.path))

    def _pads(self, spatial: tuple[int, ...], shape: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        dilated = [(s - 1) * d + 1 for s, d in zip(spatial, self.input_dilation)]
        spans = [(k - 1) * d + 1 for k, d in zip(self.kernel_size, self.kernel_dilation)]
        if self.padding == "SAME":
            return same_pads(dilated, spans, self.strides)
        pads = ((0, 0),) * len(spatial) if self.padding == "VALID" else self.padding
        self._check_fits(dilated, spans, pads, shape)
        return pads

    def __call__(self, params: Params, x: jax.Array) -> tuple[jax.Array, Params]:
        flat, batch, channels = self._flatten_input(params, x)
        pads = self._pads(flat.shape[1:-1], tuple(jnp.shape(x)))
        kernel, bias, params = self._params(params, channels)
        y = jax.lax.conv_general_dilated(
            flat,
            kernel.astype(flat.dtype) if kernel.dtype != flat.dtype else kernel,
            window_strides=self.strides,
            padding=pads,
            lhs_dilation=self.input_dilation,
            rhs_dilation=self.kernel_dilation,
            dimension_numbers=_dimension_numbers(len(self.kernel_size)),
            feature_group_count=self.feature_group_count,
            precision=self.precision,
        )
        return self._finish(y, bias, batch), params


class ConvTranspose(_ConvBase):
    """A transposed (fractionally strided) N-D convolution over channels-last input.

    It upsamples by ``strides``: the input is spread out with ``strides - 1``
    zeros between elements, padded, and convolved with the kernel (shape
    ``(*kernel_size, channels // feature_group_count, output_channels)``, not
    flipped). With ``'SAME'`` padding the output size is ``input * stride``; with
    ``'VALID'`` it is ``input * stride + max(span - stride, 0)``, matching
    ``jax.lax.conv_transpose``. Explicit pads apply to the spread-out input.
    With ``feature_group_count=G`` each group of output channels sees only its
    own group of input channels. ``strides`` already dilates the input, so there
    is no separate ``input_dilation``.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> up = bx.ConvTranspose(g / 'up', (3, 3), 4, rng, strides=2)
        >>> y, params = up(rng.seed(bx.Params(), 0), jnp.ones((8, 8, 6)))
        >>> y.shape
        (16, 16, 4)
    """

    def __call__(self, params: Params, x: jax.Array) -> tuple[jax.Array, Params]:
        flat, batch, channels = self._flatten_input(params, x)
        kernel, bias, params = self._params(params, channels)
        spans = [(k - 1) * d + 1 for k, d in zip(self.kernel_size, self.kernel_dilation)]
        if isinstance(self.padding, str):
            pads = _transpose_pads(spans, self.strides, self.padding)
        else:
            pads = self.padding
            spread = [(s - 1) * d + 1 for s, d in zip(flat.shape[1:-1], self.strides)]
            self._check_fits(spread, spans, pads, tuple(jnp.shape(x)))
        y = jax.lax.conv_general_dilated(
            flat,
            kernel.astype(flat.dtype) if kernel.dtype != flat.dtype else kernel,
            window_strides=(1,) * len(self.kernel_size),
            padding=pads,
            lhs_dilation=self.strides,
            rhs_dilation=self.kernel_dilation,
            dimension_numbers=_dimension_numbers(len(self.kernel_size)),
            feature_group_count=self.feature_group_count,
            precision=self.precision,
        )
        return self._finish(y, bias, batch), params
