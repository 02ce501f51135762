import os

import pytest

from blox_inspect import cli
from blox_inspect.analysis.programs import STAGES, build_program, check_module, export_program, op_path, program_text
from blox_inspect.common.errors import InspectError
from blox_inspect.load.model_file import load_model

MODELS = os.path.join(os.path.dirname(__file__), "models")
MLP = os.path.join(MODELS, "mlp.py")


@pytest.fixture(scope="module")
def programs():
    loaded = load_model(MLP)
    return {False: build_program(loaded), True: build_program(loaded, train=True)}


@pytest.mark.parametrize("stage", STAGES)
def test_module_filter_keeps_only_that_modules_ops(programs, stage):
    text = program_text(programs[True], stage, "net/mlp/l1")
    assert len(text) < len(program_text(programs[True], stage))
    assert "net/mlp/l2" not in text
    if stage == "jaxpr":
        assert all(line.endswith("# net/mlp/l1") for line in text.splitlines() if "#" in line)
        assert "dot_general" in text
    elif stage == "stablehlo":
        # l1 is 16->32, l2 is 32->10: l1's matmul is there, l2's kernel never is
        assert "tensor<16x32xf32>" in text and "32x10" not in text
    else:
        ops = [line for line in text.splitlines() if line.startswith("  ")]
        # Transforms wrap the first scope (transpose(jvp(net/mlp))/l1/...): op_path unwraps them.
        assert ops and all("net/mlp/l1/" in op_path(line) for line in ops)
        assert any(" dot(" in line for line in ops) or any("fusion(" in line for line in ops)


def test_parent_module_includes_its_children(programs):
    text = program_text(programs[False], "jaxpr", "net/mlp")
    assert "# net/mlp/l1" in text and "# net/mlp/l2" in text


def test_forward_and_train_stages(programs):
    assert "stablehlo.dot_general" in program_text(programs[False], "stablehlo")
    optimized = program_text(programs[True], "optimized")
    assert "HloModule" in optimized and "input_output_alias" in optimized  # params donated


def test_bad_stage_and_module():
    loaded = load_model(MLP)
    with pytest.raises(
        InspectError, match=r"unknown --stage 'mlir'; expected one of: jaxpr, stablehlo, hlo, optimized"
    ):
        program_text(build_program(loaded), "mlir")
    with pytest.raises(InspectError, match=r"no module at path 'net/mlp/l3'.*known: net/mlp, net/mlp/drop"):
        check_module(loaded, "net/mlp/l3")
    with pytest.raises(InspectError, match=r"Did you mean 'net/mlp/l2'\?"):
        check_module(loaded, "mlp/l2")  # the root left out


def test_export_mlir_text_and_bytecode(programs, tmp_path):
    text = export_program(programs[True], "step.mlir").decode()
    assert "func.func public @main" in text and "stablehlo.dot_general" in text
    assert export_program(programs[True], "step.mlirbc")[:4] == b"ML\xefR"  # MLIR bytecode magic
    with pytest.raises(InspectError, match=r"--export step.bin: expected a file name ending in .mlir"):
        export_program(programs[True], "step.bin")


def test_cli_writes_file_and_reports_bad_stage(tmp_path, capsys):
    out = tmp_path / "l2.txt"
    assert cli.main(["hlo", MLP, "--stage", "hlo", "--module", "net/mlp/l2", "-o", str(out)]) == 0
    assert "net/mlp/l2" in out.read_text()
    mlir = tmp_path / "fwd.mlir"
    assert cli.main(["hlo", MLP, "--export", str(mlir)]) == 0
    assert "stablehlo" in mlir.read_text()
    assert cli.main(["hlo", MLP, "--stage", "llvm"]) == 2
    assert "unknown --stage 'llvm'" in capsys.readouterr().err


def test_an_exported_program_runs_from_a_checkpoint_with_only_its_sidecar(tmp_path, capsys):
    """A reader with no blox: the sidecar names each argument, the checkpoint supplies it, XLA runs the file."""
    import json

    import jax
    import numpy as np
    from jax._src import xla_bridge
    from jax._src.lib import xla_client as xc
    from safetensors.numpy import load_file

    import blox as bx
    from blox_inspect import cli
    from blox_inspect.load.model_file import load_model

    mlp = os.path.join(MODELS, "mlp.py")
    loaded = load_model(mlp)
    ckpt = tmp_path / "mlp.safetensors"
    bx.save(str(ckpt), loaded.init(0, np.zeros((4, 16), np.float32)))
    out = tmp_path / "fwd.mlir"
    assert cli.main(["hlo", mlp, "--export", str(out)]) == 0
    assert f"wrote {out}.json" in capsys.readouterr().err

    # --- the reader: only fwd.mlir, fwd.mlir.json and the checkpoint ---
    sidecar = json.loads((tmp_path / "fwd.mlir.json").read_text())
    tensors = load_file(str(ckpt))  # the official library, not blox
    x = np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32)
    feed = {}
    for arg in sidecar["arguments"]:
        if arg["module_arg"] is None:  # jax.export dropped it: the program never reads it (here: the RNG state)
            assert arg["name"].startswith("params/net/rng/")
            continue
        value = x if arg["name"] == "inputs/0" else tensors[arg["name"].removeprefix("params/")]
        assert list(value.shape) == arg["shape"] and str(value.dtype) == arg["dtype"]
        feed[arg["module_arg"]] = value
    backend = xla_bridge.get_backend()
    exe = backend.compile_and_load(out.read_text(), xc.DeviceList(tuple(jax.devices()[:1])), xc.CompileOptions())
    result = exe.execute_sharded([jax.device_put(feed[k]) for k in range(len(feed))])
    got = np.asarray(result.disassemble_into_single_device_arrays()[0][0])
    assert list(got.shape) == sidecar["results"][0]["shape"]

    # Independent reference: the MLP in numpy from the same tensors (dropout is off outside training).
    t = tensors
    h = np.maximum(x @ t["net/mlp/l1/kernel"] + t["net/mlp/l1/bias"], 0)
    np.testing.assert_allclose(got, h @ t["net/mlp/l2/kernel"] + t["net/mlp/l2/bias"], rtol=1e-5, atol=1e-5)
