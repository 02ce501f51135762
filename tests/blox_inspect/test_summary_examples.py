"""Summaries of the reference examples match the published parameter counts."""

import os

import pytest

from blox_inspect import load_model, summarize_loaded
from blox_inspect.analysis import rows as _rows

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def summarize(spec, **kwargs):
    return summarize_loaded(load_model(os.path.join(ROOT, spec)), xla=False, **kwargs)


@pytest.mark.parametrize(
    "spec, trainable",
    [("examples/resnet50.py", 25_557_032), ("examples/gpt2.py", 124_439_808), ("examples/vit.py", 86_567_656)],
)
def test_published_parameter_counts(spec, trainable):
    r = summarize(spec)
    assert r.totals.trainable_params == trainable
    tops = [m for m in r.modules if m.parent is None]
    assert sum(m.params for m in tops) == r.totals.params  # every param sits under some module
    assert sum(m.flops for m in tops) + _outside(r) == r.totals.flops


def _outside(r):
    return sum(m.flops_own for m in r.modules) and r.totals.flops - sum(m.flops_own for m in r.modules)


def test_scan_over_layers_counts_the_same_flops_as_the_unrolled_model():
    unrolled, scanned = summarize("examples/gpt2.py"), summarize("examples/gpt2.py:build_scan")
    assert scanned.totals.flops == unrolled.totals.flops
    assert scanned.totals.params == unrolled.totals.params
    assert len(scanned.modules) < len(unrolled.modules)


def test_gpt2_blocks_fold_and_the_head_is_tied():
    r = summarize("examples/gpt2.py")
    folded = [row for row in _rows.rows(r) if row.repeat > 1]
    assert [row.repeat for row in folded] == [12]
    assert [row.module.params for row in folded] == [7_087_872]  # one GPT-2 small block
    embeds = [m for m in r.modules if m.type == "Embed" and m.calls == 2]
    assert [c.method for c in embeds[0].call_info] == ["__call__", "attend"]  # tied: counted once
