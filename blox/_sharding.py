"""Turning Param sharding metadata into jax shardings."""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import NamedSharding, PartitionSpec

from ._params import Params


def param_specs(params: Params) -> Params:
    """Params of the same structure whose leaves are ``PartitionSpec``s from ``Param.sharding``.

    Params with no ``'sharding'`` metadata are replicated (``PartitionSpec()``).

    Example:
        >>> import jax, blox as bx
        >>> w = jax.ShapeDtypeStruct((4, 8), 'float32')
        >>> p = bx.Params({('net', 'w'): bx.Param(w, metadata={'sharding': (None, 'model')}),
        ...                ('net', 'b'): bx.Param(w)})
        >>> specs = bx.param_specs(p)
        >>> specs['net/w'].value, specs['net/b'].value
        (P(None, 'model'), P())
    """
    return params.map(lambda _, p: PartitionSpec(*(p.sharding or ())))


def param_shardings(params: Params, mesh: Any) -> Params:
    """Params of the same structure whose leaves are ``NamedSharding``s on ``mesh``.

    Use it as ``out_shardings`` to create params directly sharded::

        abstract = jax.eval_shape(init, x)
        params = jax.jit(init, out_shardings=bx.param_shardings(abstract, mesh))(x)
    """
    return params.map(lambda _, p: NamedSharding(mesh, PartitionSpec(*(p.sharding or ()))))


def is_sharding_leaf(x: Any) -> bool:
    return isinstance(x, (NamedSharding, PartitionSpec, jax.sharding.Sharding))
