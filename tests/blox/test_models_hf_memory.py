"""from_hf reads lazily: loading a sharded bfloat16 checkpoint adds little beyond the loaded params' own size."""

import pytest

from benchmarks.hf_load import measure, write_checkpoint


@pytest.mark.slow
def test_loading_a_sharded_bf16_llama_peaks_below_1_2x_its_size(tmp_path):
    # Llama-2-7B's structure at a quarter of its widths, 4 layers: 136 MB in 32 MB shards.
    sizes = dict(vocab=8000, width=1024, mlp=2752, heads=8, kv_heads=8)
    size = write_checkpoint(str(tmp_path), 4, shard_bytes=32 * 2**20, **sizes)
    assert len(list(tmp_path.glob("model-*.safetensors"))) >= 4
    r = measure(str(tmp_path))
    assert r["dtype"] == "bfloat16" and r["count"] * 2 == size
    # The process's peak above its start-up RSS (Python, NumPy, JAX) stays below 1.2x the checkpoint.
    assert r["peak"] - r["base"] < 1.2 * size, r
