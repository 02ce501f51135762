"""Loading a Hugging Face checkpoint with ``blox.models.from_hf``: time and peak host memory against its size.

Writes a random Llama-2-7B-shaped checkpoint (bfloat16, PyTorch naming, 2 GB
shards plus ``model.safetensors.index.json``), then loads it in a fresh
process and reports the load time and that process's peak RSS (VmHWM).

    python -m benchmarks.hf_load                 # Llama-2-7B shape (13.5 GB on disk, needs ~15 GB RAM)
    python -m benchmarks.hf_load --layers 4      # the 7B widths with 4 layers (fewer GB)
    python -m benchmarks.hf_load --dir /big/tmp  # where the checkpoint is written (deleted afterwards)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import ml_dtypes
import numpy as np

LLAMA2_7B = dict(vocab=32000, width=4096, mlp=11008, heads=32, kv_heads=32)


def llama_tensors(layers: int, vocab: int, width: int, mlp: int, heads: int, kv_heads: int):
    """(name, shape) of a Llama checkpoint in the hub's PyTorch naming, written out here by hand."""
    kv = width // heads * kv_heads
    yield "model.embed_tokens.weight", (vocab, width)
    for i in range(layers):
        p = f"model.layers.{i}"
        yield f"{p}.input_layernorm.weight", (width,)
        yield f"{p}.self_attn.q_proj.weight", (width, width)
        yield f"{p}.self_attn.k_proj.weight", (kv, width)
        yield f"{p}.self_attn.v_proj.weight", (kv, width)
        yield f"{p}.self_attn.o_proj.weight", (width, width)
        yield f"{p}.post_attention_layernorm.weight", (width,)
        yield f"{p}.mlp.gate_proj.weight", (mlp, width)
        yield f"{p}.mlp.up_proj.weight", (mlp, width)
        yield f"{p}.mlp.down_proj.weight", (width, mlp)
    yield "model.norm.weight", (width,)
    yield "lm_head.weight", (vocab, width)


def write_checkpoint(folder: str, layers: int, shard_bytes: int = 2 * 10**9, seed: int = 0, **sizes) -> int:
    """Writes a random bfloat16 Llama folder (config.json, shards, index); returns the tensor bytes."""
    from safetensors.numpy import save_file

    sizes = {**LLAMA2_7B, **sizes}
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    shards, current, used = [], {}, 0
    for name, shape in llama_tensors(layers, **sizes):
        value = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(ml_dtypes.bfloat16)
        if current and used + value.nbytes > shard_bytes:
            shards.append(current)
            save_file(current, os.path.join(folder, f"part-{len(shards)}.tmp"), metadata={"format": "pt"})
            current, used = {}, 0
        current[name] = value
        used += value.nbytes
    shards.append(current)
    save_file(current, os.path.join(folder, f"part-{len(shards)}.tmp"), metadata={"format": "pt"})
    weight_map, total = {}, 0
    for i, shard in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        os.replace(os.path.join(folder, f"part-{i + 1}.tmp"), os.path.join(folder, name))
        weight_map.update(dict.fromkeys(shard, name))
        total += sum(v.nbytes for v in shard.values())
        shard.clear()
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f)
    config = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "vocab_size": sizes["vocab"],
        "hidden_size": sizes["width"],
        "intermediate_size": sizes["mlp"],
        "num_hidden_layers": layers,
        "num_attention_heads": sizes["heads"],
        "num_key_value_heads": sizes["kv_heads"],
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "torch_dtype": "bfloat16",
    }
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f)
    return total


# Run in a fresh process: its peak RSS is then the load's alone (plus Python, NumPy and JAX).
MEASURE = r"""
import json, sys, time
import jax
import blox as bx
from blox.models import build_from_config, count_params, from_hf

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

# Warm up what any first model use pays once (backend start, tracing, the Rng seeding's compiles), so the
# baseline holds it and the peak above it is the load's.
model, inputs, kwargs = build_from_config(sys.argv[1])
jax.eval_shape(lambda *a: model(bx.seed_all(model.graph.root, bx.Params()), *a, **kwargs)[1], *inputs)
jax.block_until_ready(bx.seed_all(model.graph.root, bx.Params()))
del model
base = status("VmRSS")
try:  # reset the peak to now, so VmHWM below is this load's peak
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
start = time.perf_counter()
model, params = from_hf(sys.argv[1])
jax.block_until_ready(params)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak": status("VmHWM"), "base": base, "count": count_params(params),
                  "dtype": str(params["llama/model/norm/scale"].value.dtype)}))
"""


def measure(folder: str) -> dict:
    """Loads ``folder`` with from_hf in a fresh CPU process; returns its time and memory figures."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, "-c", MEASURE, folder], cwd=root, env=env, capture_output=True, text=True, timeout=3600
    )
    if proc.returncode:
        raise RuntimeError(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="from_hf load time and peak RSS on a Llama-2-7B-shaped checkpoint")
    p.add_argument("--layers", type=int, default=32, help="32: the real 7B; fewer keeps the 7B widths")
    p.add_argument("--dir", default=None, help="where to write the checkpoint (default: the system temp dir)")
    args = p.parse_args(argv)
    folder = tempfile.mkdtemp(prefix="blox-hf-load-", dir=args.dir)
    try:
        start = time.perf_counter()
        size = write_checkpoint(folder, args.layers)
        written = time.perf_counter() - start
        shards = sum(1 for f in os.listdir(folder) if f.endswith(".safetensors"))
        r = measure(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    gib = 2**30
    print(f"Llama-2-7B widths, {args.layers} layers: {r['count']:,} params, {r['dtype']}, "
          f"{size / gib:.2f} GiB in {shards} shards (written in {written:.0f} s)")  # fmt: skip
    print("| checkpoint | load time | peak RSS | peak / checkpoint | RSS before the load |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {size / gib:.2f} GiB | {r['seconds']:.1f} s | {r['peak'] / gib:.2f} GiB | {r['peak'] / size:.3f}x "
          f"| {r['base'] / gib:.2f} GiB |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
