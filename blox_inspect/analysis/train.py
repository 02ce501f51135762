"""The train step every tool inspects: forward, backward, and an optax Adam update.

A model file may define ``BLOX_LOSS(outputs, *inputs) -> scalar``; otherwise the
loss is the mean square of every floating-point output (enough to make every
trainable param receive a gradient, which is what cost and check tools need).
When the factory's kwargs hold ``is_training``, the train step sets it to True.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp

import blox as bx
from blox_inspect.common.errors import InspectError
from blox_inspect.load.model_file import LoadedModel

if TYPE_CHECKING:  # optax is imported when a train step is built: a summary never builds one
    import optax


def default_loss(outputs: Any, *inputs: Any) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(outputs) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    if not leaves:
        raise InspectError(
            "the model returns no floating-point output, so the default train loss (mean square of the outputs) "
            "is undefined. Define BLOX_LOSS(outputs, *inputs) -> scalar in the model file."
        )
    return sum(jnp.mean(jnp.square(x.astype(jnp.float32))) for x in leaves)


@dataclass
class TrainStep:
    """``step(trainable, rest, opt_state, *inputs) -> (trainable, rest, opt_state, loss)``."""

    step: Callable
    loss: Callable  # loss(trainable, rest, *inputs) -> (loss, new_rest)
    optimizer: optax.GradientTransformation
    train_kwargs: dict[str, Any]

    def jitted(self, donate: bool = True) -> Callable:
        return jax.jit(self.step, donate_argnums=(0, 1, 2) if donate else ())

    def abstract_args(self, loaded: LoadedModel, params: bx.Params | None = None) -> tuple:
        """Abstract (trainable, rest, opt_state, *inputs) for lowering; nothing is allocated."""
        params = loaded.abstract_params() if params is None else params
        params = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
        trainable, rest = params.split()
        opt_state = jax.eval_shape(self.optimizer.init, trainable)
        return (trainable, rest, opt_state, *loaded.abstract_inputs())


def make_train_step(
    loaded: LoadedModel,
    optimizer: optax.GradientTransformation | None = None,
    loss_fn: Callable | None = None,
) -> TrainStep:
    """Builds the train step for a loaded model (plain jax: value_and_grad + optax)."""
    import optax

    opt = optimizer or optax.adam(1e-3)
    loss_fn = loss_fn or loaded.file_settings.get("BLOX_LOSS") or default_loss
    kwargs = dict(loaded.kwargs)
    if "is_training" in kwargs:
        kwargs["is_training"] = True

    def loss(trainable: bx.Params, rest: bx.Params, *inputs: Any):
        outputs, params = loaded.model(trainable.merge(rest), *inputs, **kwargs)
        _, new_rest = params.split()
        return loss_fn(outputs, *inputs), new_rest

    def step(trainable: bx.Params, rest: bx.Params, opt_state: Any, *inputs: Any):
        (value, new_rest), grads = jax.value_and_grad(loss, has_aux=True)(trainable, rest, *inputs)
        updates, opt_state = opt.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), new_rest, opt_state, value

    return TrainStep(step=step, loss=loss, optimizer=opt, train_kwargs=kwargs)
