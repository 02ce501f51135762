"""Test-wide JAX settings: strict rank promotion and 8 fake CPU devices for sharding tests."""

import os

os.environ.setdefault("XLA_FLAGS", "")
import jax  # noqa: E402

# Must happen before JAX first runs; each pytest(-xdist) worker is a fresh process.
jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_numpy_rank_promotion", "raise")
