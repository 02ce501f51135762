"""The reference architectures in examples/: exact published parameter counts, built abstractly."""

import json
import math
import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from _fill_params import filled

import blox as bx
from blox_inspect.load.model_file import import_file, load_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def example(name):
    return os.path.join(ROOT, "examples", name)


def trainable_count(params):
    return sum(math.prod(p.value.shape) for p in params.values() if p.trainable)


def test_gpt2_small_has_124m_params_with_tied_embeddings_and_named_blocks():
    loaded = load_model(example("gpt2.py"))
    params = loaded.abstract_params()
    assert trainable_count(params) == 124_439_808
    names = {bx.path_str(p[2:-1]) for p in params}
    assert {"wte", "wpe", "h/0/ln_1", "h/11/attn/query", "h/0/mlp/fc", "ln_f"} <= names
    assert not any("head" in n for n in names)  # the output head is wte.attend
    assert [bx.path_str(p[2:]) for p, _ in loaded.graph.walk()][:5] == ["", "rng", "wte", "wpe", "drop"]


def test_gpt2_scan_variant_has_the_same_count_and_stacked_paths():
    loaded = load_model(example("gpt2.py") + ":build_scan")
    params = loaded.abstract_params()
    assert trainable_count(params) == 124_439_808
    assert params["gpt2/transformer/h/block/attn/query/kernel"].value.shape == (12, 768, 768)


def test_vit_b16_has_86m_params():
    params = load_model(example("vit.py")).abstract_params()
    assert trainable_count(params) == 86_567_656
    assert params["vit/model/pos_embed"].value.shape == (1, 197, 768)
    assert params["vit/model/patch_embed/kernel"].value.shape == (768, 768)


def test_small_llama_is_causal_and_carries_sharding_metadata():
    llama = import_file(example("llama.py"))
    model, (spec,) = llama.build()
    ids = np.random.RandomState(0).randint(0, 1000, (1, 16)).astype(np.int32)
    params = filled(model, bx.seed_all(model.graph.root, bx.Params()), ids, scale=0.05)
    assert params["llama/model/layers/1/attn/query/kernel"].sharding == (None, "model")
    assert params["llama/model/layers/1/mlp/down/kernel"].sharding == ("model", None)
    assert spec.shape == (1, 128)
    run = jax.jit(model)
    logits, _ = run(params, ids)
    later = ids.copy()
    later[0, 10] = (ids[0, 10] + 1) % 1000
    changed, _ = run(params, later)
    assert logits.shape == (1, 16, 1000)
    np.testing.assert_allclose(changed[:, :10], logits[:, :10], atol=1e-5)  # earlier positions never see later tokens
    assert not np.allclose(changed[:, 10:], logits[:, 10:])


SCRIPT = """
import json, math, resource, sys
import jax
import blox as bx
from blox_inspect.load.model_file import import_file
llama = import_file(sys.argv[1])
out = {}
for name in ["build_7b", "build_7b_scan", "build_70b"]:
    model, inputs = getattr(llama, name)()
    params = jax.eval_shape(lambda ids: model(bx.seed_all(model.graph.root, bx.Params()), ids)[1], *inputs)
    out[name] = sum(math.prod(p.value.shape) for p in params.values() if p.trainable)
    out[name + "_dtype"] = str(params["llama/model/norm/scale"].value.dtype)
# VmHWM is this process's own peak; ru_maxrss would also carry the forking pytest worker's peak across exec.
try:
    with open("/proc/self/status") as f:
        out["maxrss_kib"] = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
except OSError:
    out["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
"""


def test_llama_7b_and_70b_build_abstractly_with_exact_counts_and_small_memory():
    # A fresh process, so its peak RSS measures only this abstract init (a 7B float init would need 13 GiB).
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, example("llama.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["build_7b"] == 6_738_415_616
    assert out["build_7b_scan"] == 6_738_415_616
    assert out["build_70b"] == 68_976_648_192
    assert out["build_7b_dtype"] == "bfloat16"
    assert out["maxrss_kib"] < 1024 * 1024, out  # < 1 GiB peak for 7B and 70B together


@pytest.mark.parametrize("name", ["gpt2.py", "vit.py", "llama.py"])
def test_examples_import_without_side_effects(name, capsys):
    module = import_file(example(name))
    assert callable(module.build)
    assert capsys.readouterr().out == ""
