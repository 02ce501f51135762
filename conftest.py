"""Test-wide JAX settings: strict rank promotion and 8 fake CPU devices for sharding tests."""

import os

os.environ.setdefault("XLA_FLAGS", "")
import jax  # noqa: E402

# Must happen before JAX first runs; each pytest(-xdist) worker is a fresh process.
jax.config.update("jax_num_cpu_devices", 8)
jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_configure(config):
    # Why `make test` could end with a "KeyboardInterrupt in gc callback" traceback although every test passed:
    # at exit, pytest collects garbage 5 times to flush unraisable exceptions, over a worker's heap full of JAX
    # objects (and each collection runs JAX's own gc callback). When that takes over 5 s, execnet, which runs
    # the xdist worker, sends the worker a SIGINT to end it; landing inside a gc callback (JAX's or
    # hypothesis's), the KeyboardInterrupt is reported as unraisable. One collection is enough here.
    try:
        from _pytest.unraisableexception import gc_collect_iterations_key
    except ImportError:  # another pytest: its default stays
        return
    config.stash[gc_collect_iterations_key] = 1


def pytest_sessionfinish(session, exitstatus):
    # A small heap makes the exit collections quick: drop JAX's compilation and tracing caches first.
    jax.clear_caches()
