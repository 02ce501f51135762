"""blox adds no compute: its compiled train step does exactly the FLOPs of the raw-JAX one."""

import jax
import pytest

from benchmarks import overhead


def _flops(case: overhead.Case) -> float:
    return jax.jit(case.step).lower(*case.state).compile().cost_analysis()["flops"]


@pytest.mark.parametrize("model", ["mlp", "block"])
def test_blox_step_has_the_flops_of_raw_jax(model):
    raw, blox = overhead.build(model, "raw JAX", abstract=True), overhead.build(model, "blox", abstract=True)
    raw_flops = _flops(raw)
    assert raw_flops > 1e6
    assert _flops(blox) == raw_flops
