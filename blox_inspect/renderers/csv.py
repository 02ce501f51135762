"""One CSV row per shown module (and, for a checkpoint, per tensor), with exact integers (no human units)."""

from __future__ import annotations

import csv
import io

from blox_inspect.analysis.rows import checkpoint_rows, row_seconds, rows
from blox_inspect.common.text import visible
from blox_inspect.report.model import Report

COLUMNS = [
    "path",
    "type",
    "depth",
    "repeat",
    "calls",
    "shared",
    "inputs",
    "outputs",
    "params",
    "params_own",
    "trainable_params",
    "non_trainable_params",
    "param_bytes",
    "flops",
    "flops_own",
    "flops_train",
]


# A checkpoint's CSV: one row per module rebuilt from the tensor names, each followed by its own tensors.
CHECKPOINT_COLUMNS = ["kind", "path", "depth", "dtype", "shape", "params", "trainable_params", "param_bytes"]


def _checkpoint(report: Report, depth: int | None, fold: bool) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CHECKPOINT_COLUMNS)
    for row, tensors in checkpoint_rows(report, depth, fold):
        m = row.module
        w.writerow(["module", visible(m.path), m.depth, "", "", m.params, m.trainable_params, m.param_bytes])
        for p in tensors:
            shape = "x".join(map(str, p.shape))
            trainable = p.size if p.trainable else 0
            w.writerow(["tensor", visible(p.path), m.depth + 1, visible(p.dtype), shape, p.size, trainable, p.bytes])
    return buf.getvalue()


def render(report: Report, depth: int | None = None, fold: bool = False, times: dict | None = None, **_) -> str:
    if report.source == "checkpoint":
        return _checkpoint(report, depth, fold)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS + (["time_seconds"] if times is not None else []))
    for row in rows(report, depth, fold):
        m = row.module
        w.writerow(
            [
                visible(m.path),  # exact unless it holds control characters, which a terminal would act on
                visible(m.type),
                m.depth,
                row.repeat,
                m.calls,
                m.shared,
                visible(" ".join(map(str, m.inputs))),
                visible(" ".join(map(str, m.outputs))),
                m.params,
                m.params_own,
                m.trainable_params,
                m.params - m.trainable_params,
                m.param_bytes,
                m.flops,
                m.flops_own,
                m.flops_train,
            ]
            + ([f"{row_seconds(row, times):.9g}"] if times is not None else [])
        )
    return buf.getvalue()
