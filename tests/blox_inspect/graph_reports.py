"""Builds realistic Reports by hand for the diagram tests (no model is traced).

Modules nest like a blox Graph: a module's parent is its nearest module
ancestor (``gpt2/h/0``'s parent is ``gpt2`` when ``h`` is a plain graph node).
Totals (params, FLOPs) are summed bottom-up like the analysis does.
"""

from __future__ import annotations

import math

from blox_inspect.report.model import CallInfo, Edge, ModuleInfo, ParamInfo, Report, TensorSpec, Totals

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "int32": 4}


class ReportBuilder:
    def __init__(self, root: str, type: str, config: dict | None = None, inputs=(((1, 16), "int32"),)):
        self.root = root
        self.inputs = [TensorSpec(list(s), d) for s, d in inputs]
        self.outputs: list[TensorSpec] = []
        self.mods: dict[str, dict] = {}
        self.edges: list[Edge] = []
        self.add(root, type, config)

    def add(self, path, type, config=None, params=None, flops=0, shared=False, calls=1, io=None):
        """``params``: {name: (shape, dtype)} owned directly; ``io``: (in shape, out shape) of its first call."""
        self.mods[path] = dict(
            type=type, config={k: str(v) for k, v in (config or {}).items()}, params=params or {}, flops=flops,
            shared=shared, calls=calls, io=io,
        )  # fmt: skip
        return path

    def edge(self, src, dst, shape, dtype="float32", src_index=0, dst_index=0, src_port="out", dst_port="in"):
        # Ports as the analysis records them: 'in' on src = src's input passed inside; 'out' on dst = dst's output.
        self.edges.append(Edge(src, dst, TensorSpec(list(shape), dtype), src_index, dst_index, src_port, dst_port))

    def output(self, shape, dtype="float32"):
        self.outputs.append(TensorSpec(list(shape), dtype))

    def build(self) -> Report:
        paths = list(self.mods)
        parent = {}
        for p in paths:
            parts = p.split("/")
            parent[p] = next(
                ("/".join(parts[:n]) for n in range(len(parts) - 1, 0, -1) if "/".join(parts[:n]) in self.mods), None
            )
        children = {p: [c for c in paths if parent[c] == p] for p in paths}
        infos: dict[str, ModuleInfo] = {}
        params: list[ParamInfo] = []

        def make(p: str) -> ModuleInfo:
            spec = self.mods[p]
            kids = [make(c) for c in children[p]]
            own = []
            for name, (shape, dtype) in spec["params"].items():
                size = math.prod(shape)
                own.append(ParamInfo(f"{p}/{name}", p, name, list(shape), dtype, size, size * DTYPE_BYTES[dtype], True))
            params.extend(own)
            own_n = sum(q.size for q in own)
            own_b = sum(q.bytes for q in own)
            calls = []
            if spec["io"]:
                (i, o) = spec["io"]
                calls = [CallInfo([TensorSpec(list(i), "float32")], [TensorSpec(list(o), "float32")])] * spec["calls"]
            m = ModuleInfo(
                path=p, path_tuple=p.split("/"), name=p.split("/")[-1], type=spec["type"], config=spec["config"],
                depth=len(p.split("/")) - 1, parent=parent[p], children=children[p], calls=spec["calls"],
                call_info=calls, shared=spec["shared"], params_own=own_n, params=own_n + sum(k.params for k in kids),
                trainable_params_own=own_n, trainable_params=own_n + sum(k.trainable_params for k in kids),
                param_bytes_own=own_b, param_bytes=own_b + sum(k.param_bytes for k in kids),
                flops_own=spec["flops"], flops=spec["flops"] + sum(k.flops for k in kids),
                flops_train_own=3 * spec["flops"], flops_train=3 * (spec["flops"] + sum(k.flops for k in kids)),
                param_paths=[q.path for q in own],
            )  # fmt: skip
            infos[p] = m
            return m

        root = make(self.root)
        total = sum(q.size for q in params)
        return Report(
            model=f"synthetic:{self.root}", root=self.root, inputs=self.inputs, kwargs={},
            totals=Totals(params=total, trainable_params=total, param_bytes=sum(q.bytes for q in params), flops=root.flops),
            modules=[infos[p] for p in paths], params=params, edges=self.edges, outputs=self.outputs,
        )  # fmt: skip


def linear(b: ReportBuilder, path, d_in, d_out, tokens, dtype="float32", bias=True):
    params = {"kernel": ((d_in, d_out), dtype)}
    if bias:
        params["bias"] = ((d_out,), dtype)
    return b.add(
        path,
        "Linear",
        {"features": d_out},
        params,
        flops=2 * tokens * d_in * d_out,
        io=((tokens, d_in), (tokens, d_out)),
    )


def tiny() -> Report:
    """net: an encoder Sequential (l1, l2), a shared ``proj`` called twice, a head; edges at the leaf level."""
    b = ReportBuilder("net", "Net", {"width": 8}, inputs=[((4, 8), "float32")])
    b.add("net/enc", "Sequential", {"layers": 2})
    linear(b, "net/enc/l1", 8, 16, 4)
    linear(b, "net/enc/l2", 16, 8, 4)
    b.add(
        "net/proj",
        "Linear",
        {"features": 8},
        {"kernel": ((8, 8), "float32")},
        flops=2 * 4 * 64 * 2,
        shared=True,
        calls=2,
    )
    linear(b, "net/head", 8, 2, 4)
    b.edge("<input:0>", "net/enc/l1", (4, 8))
    b.edge("net/enc/l1", "net/enc/l2", (4, 16))
    b.edge("net/enc/l2", "net/proj", (4, 8))
    b.edge("net/proj", "net/head", (4, 8))
    b.edge("<input:0>", "net/proj", (4, 8))
    b.edge("net/proj", "net/head", (4, 8), dst_index=1)
    b.edge("net/head", "<output:0>", (4, 2))
    b.output((4, 2))
    return b.build()


def nested(n_blocks=3, d=16, t=4) -> Report:
    """Edges nested like the analysis records them: between siblings, and through each container's ports."""
    b = ReportBuilder("lm", "LM", inputs=[((t,), "int32")])
    x = (t, d)
    b.add("lm/wte", "Embed", {"features": d}, {"embedding": ((100, d), "float32")})
    b.edge("<input:0>", "lm", (t,), "int32")
    b.edge("lm", "lm/wte", (t,), "int32", src_port="in")
    prev = "lm/wte"
    for i in range(n_blocks):
        h = b.add(f"lm/h/{i}", "Block")
        b.add(f"{h}/ln", "LayerNorm", {}, {"scale": ((d,), "float32")}, flops=5 * t * d)
        b.add(f"{h}/attn", "Attention", {"heads": 2})
        linear(b, f"{h}/attn/q", d, d, t)
        linear(b, f"{h}/attn/o", d, d, t)
        b.edge(prev, h, x)
        b.edge(h, f"{h}/ln", x, src_port="in")
        b.edge(f"{h}/ln", f"{h}/attn", x)
        b.edge(f"{h}/attn", f"{h}/attn/q", x, src_port="in")
        b.edge(f"{h}/attn/q", f"{h}/attn/o", x)
        b.edge(f"{h}/attn/o", f"{h}/attn", x, dst_port="out")
        b.edge(f"{h}/attn", h, x, dst_port="out")
        b.edge(h, h, x, src_port="in", dst_port="out")  # the residual: the block's input joins its output
        prev = h
    b.add("lm/ln_f", "LayerNorm", {}, {"scale": ((d,), "float32")}, flops=5 * t * d)
    b.edge(prev, "lm/ln_f", x)
    b.edge("lm/ln_f", "lm", x, dst_port="out")
    b.edge("lm", "<output:0>", x)
    b.output(x)
    return b.build()


def gpt2(n_layer=12, d=768, vocab=50257, seq=1024, batch=1) -> Report:
    """GPT-2 shaped: tied ``wte`` (shared: embed and attend), ``h/0..h/{n_layer-1}`` identical blocks."""
    t = batch * seq
    b = ReportBuilder(
        "gpt2", "GPT2", {"n_layer": n_layer, "d_model": d, "vocab": vocab}, inputs=[((batch, seq), "int32")]
    )
    b.add(
        "gpt2/wte",
        "Embed",
        {"num_embeddings": vocab, "features": d},
        {"embedding": ((vocab, d), "float32")},
        flops=2 * t * d * vocab,
        shared=True,
        calls=2,
    )
    b.add("gpt2/wpe", "Embed", {"num_embeddings": seq, "features": d}, {"embedding": ((seq, d), "float32")})
    b.add("gpt2/drop", "Dropout", {"rate": 0.1})
    x = (batch, seq, d)
    b.edge("<input:0>", "gpt2/wte", (batch, seq), "int32")
    b.edge("gpt2/wte", "gpt2/drop", x)
    b.edge("gpt2/wpe", "gpt2/drop", x)
    prev = "gpt2/drop"
    for i in range(n_layer):
        h = f"gpt2/h/{i}"
        b.add(h, "Block", {"n_head": 12})
        b.add(
            f"{h}/ln_1",
            "LayerNorm",
            {"eps": 1e-5},
            {"scale": ((d,), "float32"), "bias": ((d,), "float32")},
            flops=5 * t * d,
        )
        b.add(f"{h}/attn", "CausalSelfAttention", {"n_head": 12, "d_head": d // 12}, flops=4 * t * seq * d)
        linear(b, f"{h}/attn/c_attn", d, 3 * d, t)
        linear(b, f"{h}/attn/c_proj", d, d, t)
        b.add(
            f"{h}/ln_2",
            "LayerNorm",
            {"eps": 1e-5},
            {"scale": ((d,), "float32"), "bias": ((d,), "float32")},
            flops=5 * t * d,
        )
        b.add(f"{h}/mlp", "MLP", {"hidden": 4 * d})
        linear(b, f"{h}/mlp/c_fc", d, 4 * d, t)
        linear(b, f"{h}/mlp/c_proj", 4 * d, d, t)
        b.edge(prev, f"{h}/ln_1", x)
        b.edge(f"{h}/ln_1", f"{h}/attn/c_attn", x)
        b.edge(f"{h}/attn/c_attn", f"{h}/attn/c_proj", x)
        b.edge(f"{h}/attn/c_proj", f"{h}/ln_2", x)
        b.edge(prev, f"{h}/ln_2", x)  # residual
        b.edge(f"{h}/ln_2", f"{h}/mlp/c_fc", x)
        b.edge(f"{h}/mlp/c_fc", f"{h}/mlp/c_proj", (batch, seq, 4 * d))
        prev = f"{h}/mlp/c_proj"
    b.add(
        "gpt2/ln_f",
        "LayerNorm",
        {"eps": 1e-5},
        {"scale": ((d,), "float32"), "bias": ((d,), "float32")},
        flops=5 * t * d,
    )
    b.edge(prev, "gpt2/ln_f", x)
    b.edge("gpt2/ln_f", "gpt2/wte", x)  # tied head: wte.attend
    b.edge("gpt2/wte", "<output:0>", (batch, seq, vocab))
    b.output((batch, seq, vocab))
    return b.build()


def llama(n_layers=80, d=8192, hidden=28672, heads=64, kv_heads=8, vocab=128256, seq=2048) -> Report:
    """Llama shaped (70B with the defaults): ``layers/0..layers/{n_layers-1}``, GQA attention, SwiGLU MLP."""
    t = seq
    dh = d // heads
    bf = "bfloat16"
    b = ReportBuilder("llama", "Llama", {"n_layers": n_layers, "d_model": d}, inputs=[((1, seq), "int32")])
    b.add("llama/embed", "Embed", {"num_embeddings": vocab, "features": d}, {"embedding": ((vocab, d), bf)})
    b.edge("<input:0>", "llama/embed", (1, seq), "int32")
    x = (1, seq, d)
    prev = "llama/embed"
    for i in range(n_layers):
        h = f"llama/layers/{i}"
        b.add(h, "DecoderLayer", {"heads": heads, "kv_heads": kv_heads})
        b.add(f"{h}/attn_norm", "RMSNorm", {"eps": 1e-5}, {"scale": ((d,), bf)}, flops=4 * t * d)
        b.add(
            f"{h}/attn", "Attention", {"heads": heads, "kv_heads": kv_heads, "rope_theta": 500000}, flops=4 * t * t * d
        )
        for name, width in (("q", d), ("k", kv_heads * dh), ("v", kv_heads * dh)):
            linear(b, f"{h}/attn/{name}", d, width, t, bf, bias=False)
            b.edge(f"{h}/attn_norm", f"{h}/attn/{name}", x, bf)
            b.edge(f"{h}/attn/{name}", f"{h}/attn/o", (1, seq, width), bf)
        linear(b, f"{h}/attn/o", d, d, t, bf, bias=False)
        b.add(f"{h}/mlp_norm", "RMSNorm", {"eps": 1e-5}, {"scale": ((d,), bf)}, flops=4 * t * d)
        b.add(f"{h}/mlp", "SwiGLU", {"hidden": hidden})
        for name, (i_, o_) in (("gate", (d, hidden)), ("up", (d, hidden)), ("down", (hidden, d))):
            linear(b, f"{h}/mlp/{name}", i_, o_, t, bf, bias=False)
        b.edge(prev, f"{h}/attn_norm", x, bf)
        b.edge(f"{h}/attn/o", f"{h}/mlp_norm", x, bf)
        b.edge(prev, f"{h}/mlp_norm", x, bf)
        b.edge(f"{h}/mlp_norm", f"{h}/mlp/gate", x, bf)
        b.edge(f"{h}/mlp_norm", f"{h}/mlp/up", x, bf)
        b.edge(f"{h}/mlp/gate", f"{h}/mlp/down", (1, seq, hidden), bf)
        b.edge(f"{h}/mlp/up", f"{h}/mlp/down", (1, seq, hidden), bf)
        prev = f"{h}/mlp/down"
    b.add("llama/norm", "RMSNorm", {"eps": 1e-5}, {"scale": ((d,), bf)}, flops=4 * t * d)
    linear(b, "llama/lm_head", d, vocab, t, bf, bias=False)
    b.edge(prev, "llama/norm", x, bf)
    b.edge("llama/norm", "llama/lm_head", x, bf)
    b.edge("llama/lm_head", "<output:0>", (1, seq, vocab), bf)
    b.output((1, seq, vocab), bf)
    return b.build()


def resnet50(batch=1, size=224) -> Report:
    """ResNet-50 shaped: stem, 4 stages of bottlenecks (3, 4, 6, 3); block 0 of a stage has a downsample."""
    b = ReportBuilder("resnet", "ResNet", {"depth": 50}, inputs=[((batch, size, size, 3), "float32")])

    def conv(path, cin, cout, k, hw):
        return b.add(
            path,
            "Conv",
            {"features": cout, "kernel": f"({k}, {k})"},
            {"kernel": ((k, k, cin, cout), "float32")},
            flops=2 * batch * hw * hw * k * k * cin * cout,
        )

    def bn(path, c, hw):
        return b.add(
            path,
            "BatchNorm",
            {"momentum": 0.9},
            {"scale": ((c,), "float32"), "bias": ((c,), "float32")},
            flops=4 * batch * hw * hw * c,
        )

    hw = size // 2
    conv("resnet/conv1", 3, 64, 7, hw)
    bn("resnet/bn1", 64, hw)
    b.add("resnet/pool", "MaxPool", {"window": 3})
    b.edge("<input:0>", "resnet/conv1", (batch, size, size, 3))
    b.edge("resnet/conv1", "resnet/bn1", (batch, hw, hw, 64))
    b.edge("resnet/bn1", "resnet/pool", (batch, hw, hw, 64))
    hw //= 2
    prev, cin = "resnet/pool", 64
    for s, (blocks, width) in enumerate(((3, 64), (4, 128), (6, 256), (3, 512))):
        stage = b.add(f"resnet/layer{s + 1}", "Stage", {"blocks": blocks})
        for i in range(blocks):
            blk = b.add(f"{stage}/{i}", "Bottleneck", {"width": width, "stride": 2 if (i == 0 and s > 0) else 1})
            out_hw = hw // 2 if (i == 0 and s > 0) else hw
            conv(f"{blk}/conv1", cin, width, 1, hw)
            bn(f"{blk}/bn1", width, hw)
            conv(f"{blk}/conv2", width, width, 3, out_hw)
            bn(f"{blk}/bn2", width, out_hw)
            conv(f"{blk}/conv3", width, 4 * width, 1, out_hw)
            bn(f"{blk}/bn3", 4 * width, out_hw)
            chain = [prev, f"{blk}/conv1", f"{blk}/bn1", f"{blk}/conv2", f"{blk}/bn2", f"{blk}/conv3", f"{blk}/bn3"]
            shapes = [(hw, cin), (hw, width), (hw, width), (out_hw, width), (out_hw, width), (out_hw, 4 * width)]
            for a, c, (side, ch) in zip(chain, chain[1:], shapes):
                b.edge(a, c, (batch, side, side, ch))
            if i == 0:
                b.add(f"{blk}/downsample", "Sequential", {"layers": 2})
                conv(f"{blk}/downsample/0", cin, 4 * width, 1, out_hw)
                bn(f"{blk}/downsample/1", 4 * width, out_hw)
                b.edge(prev, f"{blk}/downsample/0", (batch, hw, hw, cin))
                b.edge(f"{blk}/downsample/0", f"{blk}/downsample/1", (batch, out_hw, out_hw, 4 * width))
            prev, cin, hw = f"{blk}/bn3", 4 * width, out_hw
    b.add(
        "resnet/fc",
        "Linear",
        {"features": 1000},
        {"kernel": ((2048, 1000), "float32"), "bias": ((1000,), "float32")},
        flops=2 * batch * 2048 * 1000,
    )
    b.edge(prev, "resnet/fc", (batch, 2048))
    b.edge("resnet/fc", "<output:0>", (batch, 1000))
    b.output((batch, 1000))
    return b.build()
