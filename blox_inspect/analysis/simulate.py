"""Compiling for a mesh larger than this process's devices: a subprocess with N fake CPU devices.

JAX fixes its device count when its backend starts, so a process that already ran JAX cannot grow to 8 or
256 devices. ``compile_for_mesh`` therefore compiles in-process when this process already has enough CPU
devices (tests run with 8), and otherwise starts ``python -m blox_inspect.analysis.simulate`` which calls
``jax.config.update('jax_num_cpu_devices', N)`` before JAX runs, compiles the same program for the same plan
and sends back :class:`CompiledFacts` as JSON. Compiling never allocates the model's arrays.

``jax.sharding.AbstractMesh`` was tried first: it lowers (with ``lowering_platforms``) but ``compile()``
needs a concrete device assignment, so it cannot give memory_analysis.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from typing import Any

from blox_inspect.analysis.programs import build_program
from blox_inspect.analysis.shard_plan import ShardPlan, make_plan
from blox_inspect.common.errors import InspectError
from blox_inspect.load.model_file import LoadedModel, load_model
from blox_inspect.report.cost import CompiledFacts

MSG_NO_FILE = (
    "compiling for a {n}-device mesh needs {n} devices; this process has {have}, and a model given as Python "
    "objects (not a model file) cannot be re-loaded in a subprocess with more fake devices. Pass the model file, "
    "or start Python with jax.config.update('jax_num_cpu_devices', {n}) before JAX runs."
)
MSG_WORKER = "the mesh-simulation subprocess failed (exit code {code}):\n{err}"


def with_batch(loaded: LoadedModel, batch: int | None) -> LoadedModel:
    """A copy whose inputs have leading (batch) dimension ``batch``; scalars are left alone."""
    if batch is None:
        return loaded
    import jax

    if batch < 1:
        raise InspectError(f"--batch {batch}: expected a positive batch size.")

    def resize(x: Any) -> Any:
        shape = tuple(x.shape)
        return jax.ShapeDtypeStruct((batch, *shape[1:]) if shape else shape, x.dtype)

    return LoadedModel(
        model=loaded.model,
        inputs=tuple(jax.tree.map(resize, loaded.inputs)),
        kwargs=loaded.kwargs,
        source=loaded.source,
        file_settings=loaded.file_settings,
    )


def _usable_devices(n: int) -> list | None:
    import jax

    if jax.default_backend() != "cpu":
        return None  # compile for the simulated CPU mesh, not for whatever accelerator is attached
    devices = jax.devices()
    return devices[:n] if len(devices) >= n else None


def compile_for_mesh(
    loaded: LoadedModel,
    plan: ShardPlan,
    train: bool,
    spec: str | None,
    batch: int | None = None,
    force_subprocess: bool = False,
) -> tuple[CompiledFacts, str]:
    """CompiledFacts for ``plan``'s mesh, and how they were obtained ('in-process' or 'subprocess')."""
    from blox_inspect.analysis.compile import compile_facts

    devices = None if force_subprocess else _usable_devices(plan.num_devices)
    if devices is not None:
        return compile_facts(build_program(loaded, train), plan, devices), "in-process"
    if spec is None:
        import jax

        raise InspectError(MSG_NO_FILE.format(n=plan.num_devices, have=len(jax.devices())))
    request = {"model": spec, "train": train, "mesh": plan.mesh, "strategy": plan.strategy, "batch": batch}
    return run_worker(request), "subprocess"


def _repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_worker(request: dict) -> CompiledFacts:
    with tempfile.TemporaryDirectory(prefix="blox-simulate-") as tmp:
        out = os.path.join(tmp, "facts.json")
        request = dict(request, output=out)
        env = dict(os.environ)
        env["JAX_PLATFORMS"] = "cpu"
        # Our own package must win over any installed copy, and the model file path stays as given.
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_repo_root(), env.get("PYTHONPATH", "")) if p)
        proc = subprocess.run(
            [sys.executable, "-m", "blox_inspect.analysis.simulate"],
            input=json.dumps(request),
            text=True,
            capture_output=True,
            env=env,
            cwd=os.getcwd(),
        )
        if not os.path.exists(out):
            raise InspectError(MSG_WORKER.format(code=proc.returncode, err=proc.stderr.strip()[-3000:]))
        with open(out) as f:
            data = json.load(f)
    if "error" in data:
        raise InspectError(data["error"])
    from blox_inspect.report.model import _build

    return _build(CompiledFacts, data)


def worker_main() -> int:
    """Entry point of the subprocess: JSON request on stdin, CompiledFacts (or an error) written to a file."""
    import dataclasses

    request = json.loads(sys.stdin.read())
    n = 1
    for size in request["mesh"].values():
        n *= int(size)
    import jax

    jax.config.update("jax_num_cpu_devices", n)  # before anything asks JAX for its devices
    from blox_inspect.analysis.compile import compile_facts

    try:
        loaded = with_batch(load_model(request["model"]), request.get("batch"))
        params = loaded.abstract_params()
        plan = make_plan(params, loaded.abstract_inputs(), request["mesh"], request["strategy"])
        facts = compile_facts(build_program(loaded, request["train"], params), plan)
        result: dict = dataclasses.asdict(facts)
    except InspectError as e:
        result = {"error": str(e)}
    except Exception as e:  # reported by the parent as one clear message
        result = {"error": f"compiling for the mesh raised {type(e).__name__}: {e}"}
    with open(request["output"], "w") as f:
        json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
