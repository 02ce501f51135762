"""Sequence modules: SequenceBase, RecurrenceBase (a scanned step), LSTM and GRU.

Sequences are time-major: ``inputs`` is ``(time, *batch, features)`` and a
reset mask is ``(time, *batch)``. Time-major is what ``lax.scan`` slices
along, so no transposes are needed, and ``reset[t]`` lines up with step ``t``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ._errors import ShapeError
from ._graph import Graph
from ._module import Module, lead
from ._params import Params
from ._paths import path_str

MSG_SEQ_RANK = (
    "{where} ({type}): expected a time-major sequence (time, *batch, features) with at least 2 axes, "
    "got shape {shape}. For a single unbatched sequence pass (time, features); for batch-major data "
    "use jnp.swapaxes(x, 0, 1)."
)
MSG_STEP_RANK = (
    "{where} ({type}): expected one step's input (*batch, features) with at least 1 axis, got shape "
    "{shape}. Add a feature axis with x[..., None]."
)
MSG_FEATURES = (
    "{where} ({type}): the params were built for {want} input features but this input has {got} "
    "(input shape {shape}). Check the previous layer's width or rebuild params."
)
MSG_STATE = (
    "{where} ({type}): the state has shape {state} but an input of shape {shape} needs "
    "{want} (*batch, hidden_size). Build it with initial_state(batch_shape={batch})."
)
MSG_RESET = (
    "{where} ({type}): the reset mask must have shape (time, *batch) = {want} to match inputs of shape "
    "{shape}, got {got}. reset[t, b] true re-initialises example b's state before step t."
)


class SequenceBase(Module):
    """A module that consumes sequences one step at a time.

    Subclasses define the step ``(outputs, state), params = m(params, inputs,
    state)`` on one time step ``(*batch, features)``, ``initial_state(batch_shape)``
    and ``apply``, which runs a whole time-major sequence ``(time, *batch,
    features)`` and returns ``((outputs, final_state), params)``.
    """

    def initial_state(self, batch_shape: tuple[int, ...] = ()) -> Any:
        """The state before the first step for inputs with leading axes ``batch_shape``."""
        raise NotImplementedError(f"{type(self).__name__} must define initial_state(batch_shape)")

    def __call__(self, params: Params, inputs: jax.Array, state: Any) -> tuple[tuple[Any, Any], Params]:
        raise NotImplementedError(f"{type(self).__name__} must define the step __call__(params, inputs, state)")

    def apply(
        self,
        params: Params,
        inputs: jax.Array,
        initial_state: Any = None,
        reset: jax.Array | None = None,
        dynamic: bool = True,
    ) -> tuple[tuple[Any, Any], Params]:
        """Runs the whole sequence; returns ``((outputs, final_state), params)``."""
        raise NotImplementedError(f"{type(self).__name__} must define apply(params, inputs, ...)")

    def _fmt(self) -> dict[str, str]:
        return {"where": path_str(self.path), "type": type(self).__name__}

    def _check_sequence(self, inputs: jax.Array, reset: jax.Array | None) -> tuple[int, ...]:
        """Validates a time-major sequence (and its reset mask); returns the batch shape."""
        shape = tuple(jnp.shape(inputs))
        if len(shape) < 2:
            raise ShapeError(MSG_SEQ_RANK.format(**self._fmt(), shape=shape))
        if reset is not None and tuple(jnp.shape(reset)) != shape[:-1]:
            raise ShapeError(MSG_RESET.format(**self._fmt(), want=shape[:-1], shape=shape, got=tuple(jnp.shape(reset))))
        return shape[1:-1]


def _where_reset(mask: jax.Array, fresh: Any, state: Any) -> Any:
    def pick(f, s):
        m = jnp.reshape(mask, mask.shape + (1,) * (s.ndim - mask.ndim))
        return jnp.where(m, jnp.broadcast_to(f, s.shape), s)

    return jax.tree.map(pick, fresh, state)


class RecurrenceBase(SequenceBase):
    """A :class:`SequenceBase` whose ``apply`` repeats its step along time.

        ``dynamic=True`` runs the step under ``jax.lax.scan`` (one compiled loop
        body); ``dynamic=False`` runs a Python loop, which is easy to step through
        in a debugger. Both give the same results from the same Params (bitwise
    under ``jax.jit``; run eagerly, op-by-op rounding may differ in the last bit). With
        ``reset``, example ``b``'s state is replaced by ``initial_state`` (its
        default, zeros) before step ``t`` wherever ``reset[t, b]`` is true, so
        packed sequences of several episodes never leak state across episodes.

        Example:
            >>> import jax.numpy as jnp, blox as bx
            >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
            >>> lstm = bx.LSTM(g / 'lstm', 8, rng)
            >>> x = jnp.ones((5, 2, 3))  # (time, batch, features)
            >>> (ys, state), params = lstm.apply(rng.seed(bx.Params(), 0), x)
            >>> ys.shape, state.hidden.shape
            ((5, 2, 8), (2, 8))
    """

    def apply(
        self,
        params: Params,
        inputs: jax.Array,
        initial_state: Any = None,
        reset: jax.Array | None = None,
        dynamic: bool = True,
    ) -> tuple[tuple[Any, Any], Params]:
        inputs = jnp.asarray(inputs)
        batch_shape = self._check_sequence(inputs, reset)
        fresh = self.initial_state(batch_shape)
        state = fresh if initial_state is None else initial_state
        if reset is not None:
            reset = jnp.asarray(reset, bool)
        params = self._create_params(params, inputs, state)

        def body(carry, xs):
            state, params = carry
            x, r = xs
            if r is not None:
                state = _where_reset(r, fresh, state)
            (y, state), params = self(params, x, state)
            return (state, params), y

        if dynamic or inputs.shape[0] == 0:
            (state, params), ys = jax.lax.scan(body, (state, params), (inputs, reset))
            return (ys, state), params
        outputs = []
        carry = (state, params)
        for t in range(inputs.shape[0]):
            carry, y = body(carry, (inputs[t], None if reset is None else reset[t]))
            outputs.append(y)
        state, params = carry
        ys = jax.tree.map(lambda *ys: jnp.stack(ys), *outputs)
        return (ys, state), params

    def _create_params(self, params: Params, inputs: jax.Array, state: Any) -> Params:
        # Params must exist before the loop: a scan body cannot add entries to its carry.
        # An abstract step tells us, without computing anything, whether the step creates any.
        if inputs.shape[0] == 0:
            return params
        created = jax.eval_shape(lambda p, x, s: self(p, x, s)[1], params, inputs[0], state)
        if set(created) == set(params):
            return params
        _, params = self(params, inputs[0], state)
        return params


def _check_step(module: RecurrenceBase, params: Params, x: jax.Array, hidden: jax.Array) -> None:
    shape = tuple(jnp.shape(x))
    fmt = module._fmt()
    if len(shape) < 1:
        raise ShapeError(MSG_STEP_RANK.format(**fmt, shape=shape))
    found = params.get(module.param_path("kernel_i"))
    if found is not None and found.value.shape[0] != shape[-1]:
        raise ShapeError(MSG_FEATURES.format(**fmt, want=found.value.shape[0], got=shape[-1], shape=shape))
    want = shape[:-1] + (module.hidden_size,)
    if tuple(jnp.shape(hidden)) != want:
        raise ShapeError(
            MSG_STATE.format(**fmt, state=tuple(jnp.shape(hidden)), shape=shape, want=want, batch=shape[:-1])
        )


class LSTMState(NamedTuple):
    """The state of an :class:`LSTM`: hidden output and memory cell, each ``(*batch, hidden_size)``."""

    hidden: jax.Array
    cell: jax.Array


def _with_forget_bias(init: Callable, hidden_size: int, forget_bias: float) -> Callable:
    def wrapped(key, shape, dtype=jnp.float32):
        offset = jnp.zeros(shape, dtype).at[hidden_size : 2 * hidden_size].set(forget_bias)
        return init(key, shape, dtype) + offset

    return wrapped


class _Cell(RecurrenceBase):
    def __init__(
        self,
        graph: Graph,
        hidden_size: int,
        rng: Module | None = None,
        kernel_init: Callable = jax.nn.initializers.lecun_normal(),
        recurrent_init: Callable = jax.nn.initializers.orthogonal(),
        bias_init: Callable = jax.nn.initializers.zeros,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
    ):
        super().__init__(graph)
        self.hidden_size = int(hidden_size)
        self.rng = rng
        self.kernel_init = kernel_init
        self.recurrent_init = recurrent_init
        self.bias_init = bias_init
        self.param_dtype = param_dtype
        self.precision = precision

    def _zeros(self, batch_shape: tuple[int, ...]) -> jax.Array:
        return jnp.zeros(tuple(batch_shape) + (self.hidden_size,), self.param_dtype)

    def _kernels(self, params: Params, features: int, gates: int) -> tuple[jax.Array, jax.Array, Params]:
        h = self.hidden_size
        wi, params = self.get_param(
            params, "kernel_i", (features, gates * h), self.kernel_init, self.param_dtype, rng=self.rng
        )
        wh, params = self.get_param(
            params, "kernel_h", (h, gates * h), self.recurrent_init, self.param_dtype, rng=self.rng
        )
        return wi, wh, params


class LSTM(_Cell):
    """A long short-term memory layer (gates in the order input, forget, cell, output).

    One step maps ``x`` ``(*batch, features)`` and an :class:`LSTMState` to
    ``(hidden, new_state)``. Params: ``kernel_i`` ``(features, 4h)``,
    ``kernel_h`` ``(h, 4h)`` and ``bias`` ``(4h,)``, whose forget-gate slice
    starts at ``forget_bias`` so early training remembers by default.
    ``apply`` runs a time-major sequence (see :class:`RecurrenceBase`).

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> lstm = bx.LSTM(g / 'lstm', 4, rng)
        >>> state = lstm.initial_state((2,))
        >>> (h, state), params = lstm(rng.seed(bx.Params(), 0), jnp.ones((2, 3)), state)
        >>> h.shape, params['net/lstm/bias'].value[4:8].tolist()
        ((2, 4), [1.0, 1.0, 1.0, 1.0])
    """

    def __init__(
        self,
        graph: Graph,
        hidden_size: int,
        rng: Module | None = None,
        kernel_init: Callable = jax.nn.initializers.lecun_normal(),
        recurrent_init: Callable = jax.nn.initializers.orthogonal(),
        bias_init: Callable = jax.nn.initializers.zeros,
        forget_bias: float = 1.0,
        param_dtype: Any = jnp.float32,
        precision: Any = None,
    ):
        super().__init__(graph, hidden_size, rng, kernel_init, recurrent_init, bias_init, param_dtype, precision)
        self.forget_bias = forget_bias

    def initial_state(self, batch_shape: tuple[int, ...] = ()) -> LSTMState:
        return LSTMState(self._zeros(batch_shape), self._zeros(batch_shape))

    def __call__(
        self, params: Params, inputs: jax.Array, state: LSTMState
    ) -> tuple[tuple[jax.Array, LSTMState], Params]:
        h_prev, c_prev = state
        _check_step(self, params, inputs, h_prev)
        wi, wh, params = self._kernels(params, inputs.shape[-1], 4)
        init = _with_forget_bias(self.bias_init, self.hidden_size, self.forget_bias)
        bias, params = self.get_param(params, "bias", (4 * self.hidden_size,), init, self.param_dtype, rng=self.rng)
        z = jnp.matmul(inputs, wi, precision=self.precision) + jnp.matmul(h_prev, wh, precision=self.precision)
        i, f, g, o = jnp.split(z + lead(bias, z.ndim), 4, axis=-1)
        c = jax.nn.sigmoid(f) * c_prev + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, LSTMState(h, c)), params


class GRU(_Cell):
    """A gated recurrent unit layer (gates in the order reset, update, candidate).

    One step: ``r = σ(x Wi_r + bi_r + h Wh_r + bh_r)``, ``z`` likewise,
    ``n = tanh(x Wi_n + bi_n + r * (h Wh_n + bh_n))`` and
    ``h' = (1 - z) * n + z * h``; the state is ``h`` ``(*batch, hidden_size)``.
    Params: ``kernel_i`` ``(features, 3h)``, ``kernel_h`` ``(h, 3h)``,
    ``bias_i`` and ``bias_h`` ``(3h,)``.

    Example:
        >>> import jax.numpy as jnp, blox as bx
        >>> g = bx.Graph('net'); rng = bx.Rng(g / 'rng')
        >>> gru = bx.GRU(g / 'gru', 4, rng)
        >>> (ys, h), params = gru.apply(rng.seed(bx.Params(), 0), jnp.ones((6, 3)), dynamic=False)
        >>> ys.shape, h.shape
        ((6, 4), (4,))
    """

    def initial_state(self, batch_shape: tuple[int, ...] = ()) -> jax.Array:
        return self._zeros(batch_shape)

    def __call__(
        self, params: Params, inputs: jax.Array, state: jax.Array
    ) -> tuple[tuple[jax.Array, jax.Array], Params]:
        _check_step(self, params, inputs, state)
        wi, wh, params = self._kernels(params, inputs.shape[-1], 3)
        size = (3 * self.hidden_size,)
        bi, params = self.get_param(params, "bias_i", size, self.bias_init, self.param_dtype, rng=self.rng)
        bh, params = self.get_param(params, "bias_h", size, self.bias_init, self.param_dtype, rng=self.rng)
        gi = jnp.matmul(inputs, wi, precision=self.precision) + lead(bi, inputs.ndim)
        gh = jnp.matmul(state, wh, precision=self.precision) + lead(bh, state.ndim)
        ir, iz, in_ = jnp.split(gi, 3, axis=-1)
        hr, hz, hn = jnp.split(gh, 3, axis=-1)
        r = jax.nn.sigmoid(ir + hr)
        z = jax.nn.sigmoid(iz + hz)
        n = jnp.tanh(in_ + r * hn)
        h = (1.0 - z) * n + z * state
        return (h, h), params
