"""Overhead of blox vs raw JAX, Equinox and Flax NNX (`python -m benchmarks.overhead`).

The same two models are written by hand in each library with its own layers:
an MLP, and a pre-norm transformer block (multi-head self-attention + MLP).
Each is trained with the same optax.adam step. We measure, in one process:

* the steady-state jitted train step (median of many calls, block_until_ready),
* an eager (un-jitted) forward call,
* the first call of the jitted step (trace + compile + one run),

and print them with their ratios to raw JAX. The libraries take turns round by
round, and each ratio is the median of per-round ratios, so load on the machine
affects all of them alike.

``build(model, lib)`` is also used by tests/blox/test_overhead_flops.py, which
checks that blox's compiled step does exactly the FLOPs of raw JAX.
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import optax

import blox as bx

MLP = dict(batch=128, d_in=64, hidden=256, d_out=16)
BLOCK = dict(batch=2, seq=64, width=128, heads=4, mlp=512)
LIBS = ("raw JAX", "blox", "Equinox", "Flax NNX")
EPS = 1e-5
LR = 1e-3


@dataclass
class Case:
    """One model in one library: a jitted train step and an eager forward call."""

    step: Callable  # (*state) -> state; state[-1] is the loss
    state: tuple
    forward: Callable  # () -> output, run eagerly
    make_step: Callable  # () -> a freshly jitted step (for timing trace + compile)


@functools.partial(jax.jit, static_argnums=0)
def _data(model: str) -> tuple[jax.Array, jax.Array]:
    kx, ky = jax.random.split(jax.random.key(42))
    if model == "mlp":
        shape_x, shape_y = (MLP["batch"], MLP["d_in"]), (MLP["batch"], MLP["d_out"])
    else:
        shape_x = shape_y = (BLOCK["batch"], BLOCK["seq"], BLOCK["width"])
    return jax.random.normal(kx, shape_x), jax.random.normal(ky, shape_y)


def _heads(q: jax.Array, k: jax.Array, v: jax.Array, heads: int) -> jax.Array:
    """Scaled dot-product attention on (..., seq, width) inputs; shared by every library."""
    *lead, t, d = q.shape
    split = lambda a: jnp.swapaxes(a.reshape(*lead, t, heads, d // heads), -2, -3)
    q, k, v = split(q), split(k), split(v)
    scores = jnp.einsum("...qd,...kd->...qk", q, k) / jnp.sqrt(jnp.float32(d // heads))
    out = jnp.einsum("...qk,...kd->...qd", jax.nn.softmax(scores, axis=-1), v)
    return jnp.swapaxes(out, -2, -3).reshape(*lead, t, d)


# --- raw JAX: params are nested dicts ----------------------------------------------------
def _raw_linear(key, n_in, n_out):
    return {"kernel": jax.nn.initializers.lecun_normal()(key, (n_in, n_out)), "bias": jnp.zeros((n_out,))}


def _raw_dense(p, x):
    return x @ p["kernel"] + p["bias"].reshape((1,) * (x.ndim - 1) + p["bias"].shape)


def _raw_layernorm(p, x):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    y = (x - mean) * jax.lax.rsqrt(var + EPS)
    lead = (1,) * (x.ndim - 1)
    return y * p["scale"].reshape(lead + p["scale"].shape) + p["bias"].reshape(lead + p["bias"].shape)


def _raw_init(model: str, key) -> dict:
    ks = jax.random.split(key, 6)
    if model == "mlp":
        return {
            "l1": _raw_linear(ks[0], MLP["d_in"], MLP["hidden"]),
            "l2": _raw_linear(ks[1], MLP["hidden"], MLP["hidden"]),
            "l3": _raw_linear(ks[2], MLP["hidden"], MLP["d_out"]),
        }
    d, m = BLOCK["width"], BLOCK["mlp"]
    ln = lambda: {"scale": jnp.ones((d,)), "bias": jnp.zeros((d,))}
    return {
        "ln1": ln(),
        "qkv": _raw_linear(ks[0], d, 3 * d),
        "proj": _raw_linear(ks[1], d, d),
        "ln2": ln(),
        "up": _raw_linear(ks[2], d, m),
        "down": _raw_linear(ks[3], m, d),
    }


def _raw_apply(model: str, p: dict, x: jax.Array) -> jax.Array:
    if model == "mlp":
        h = jax.nn.relu(_raw_dense(p["l1"], x))
        h = jax.nn.relu(_raw_dense(p["l2"], h))
        return _raw_dense(p["l3"], h)
    q, k, v = jnp.split(_raw_dense(p["qkv"], _raw_layernorm(p["ln1"], x)), 3, axis=-1)
    x = x + _raw_dense(p["proj"], _heads(q, k, v, BLOCK["heads"]))
    return x + _raw_dense(p["down"], jax.nn.gelu(_raw_dense(p["up"], _raw_layernorm(p["ln2"], x))))


def _make(abstract: bool) -> Callable:
    """Runs an init function for real (jitted) or only abstractly (shapes, no allocation)."""
    return jax.eval_shape if abstract else (lambda fn, *args: jax.jit(fn)(*args))


def _raw_case(model: str, abstract: bool = False) -> Case:
    run = _make(abstract)
    x, y = run(functools.partial(_data, model))
    params = run(lambda: _raw_init(model, jax.random.key(0)))
    opt = optax.adam(LR)

    def make():  # a new function each time, so no trace or compile cache is shared
        def step(params, opt_state, x, y, _loss=None):
            loss, grads = jax.value_and_grad(lambda p: jnp.mean((_raw_apply(model, p, x) - y) ** 2))(params)
            updates, opt_state = opt.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, x, y, loss

        return jax.jit(step)

    return Case(make(), (params, run(opt.init, params), x, y, None), lambda: _raw_apply(model, params, x), make)


# --- blox ----------------------------------------------------------------------------------
class BloxBlock(bx.Module):
    """Pre-norm transformer block built from blox layers."""

    def __init__(self, graph: bx.Graph, width: int, heads: int, mlp: int, rng: bx.Rng):
        super().__init__(graph)
        self.heads = heads
        self.ln1 = bx.LayerNorm(graph / "ln1", epsilon=EPS)
        self.qkv = bx.Linear(graph / "qkv", 3 * width, rng)
        self.proj = bx.Linear(graph / "proj", width, rng)
        self.ln2 = bx.LayerNorm(graph / "ln2", epsilon=EPS)
        self.up = bx.Linear(graph / "up", mlp, rng)
        self.down = bx.Linear(graph / "down", width, rng)

    def __call__(self, params: bx.Params, x: jax.Array) -> tuple[jax.Array, bx.Params]:
        h, params = self.ln1(params, x)
        h, params = self.qkv(params, h)
        q, k, v = jnp.split(h, 3, axis=-1)
        h, params = self.proj(params, _heads(q, k, v, self.heads))
        x = x + h
        h, params = self.ln2(params, x)
        h, params = self.up(params, h)
        h, params = self.down(params, jax.nn.gelu(h))
        return x + h, params


def blox_model(model: str) -> tuple[bx.Rng, bx.Module]:
    graph = bx.Graph(model)
    rng = bx.Rng(graph / "rng")
    if model == "mlp":
        node = graph / "layers"
        layers = [bx.Linear(node / "l1", MLP["hidden"], rng), jax.nn.relu, bx.Linear(node / "l2", MLP["hidden"], rng)]
        return rng, bx.Sequential(node, [*layers, jax.nn.relu, bx.Linear(node / "l3", MLP["d_out"], rng)])
    return rng, BloxBlock(graph / "block", BLOCK["width"], BLOCK["heads"], BLOCK["mlp"], rng)


def _blox_case(model: str, abstract: bool = False) -> Case:
    run = _make(abstract)
    x, y = run(functools.partial(_data, model))
    rng, net = blox_model(model)
    params = run(lambda x: net(rng.seed(bx.Params(), 0), x)[1], x).locked()
    opt = optax.adam(LR)

    def loss_fn(trainable, rest, x, y):
        out, _ = net(trainable.merge(rest), x)
        return jnp.mean((out - y) ** 2)

    def make():
        def step(params, opt_state, x, y, _loss=None):
            trainable, rest = params.split()
            loss, grads = jax.value_and_grad(loss_fn)(trainable, rest, x, y)
            updates, opt_state = opt.update(grads, opt_state, trainable)
            return optax.apply_updates(trainable, updates).merge(rest), opt_state, x, y, loss

        return jax.jit(step)

    state = (params, run(opt.init, params.split()[0]), x, y, None)
    return Case(make(), state, lambda: net(params, x)[0], make)


# --- Equinox -------------------------------------------------------------------------------
def _eqx_case(model: str) -> Case:
    import equinox as eqx

    class EqxMLP(eqx.Module):
        l1: eqx.nn.Linear
        l2: eqx.nn.Linear
        l3: eqx.nn.Linear

        def __init__(self, key):
            k1, k2, k3 = jax.random.split(key, 3)
            self.l1 = eqx.nn.Linear(MLP["d_in"], MLP["hidden"], key=k1)
            self.l2 = eqx.nn.Linear(MLP["hidden"], MLP["hidden"], key=k2)
            self.l3 = eqx.nn.Linear(MLP["hidden"], MLP["d_out"], key=k3)

        def __call__(self, x):  # one example; batched with vmap
            return self.l3(jax.nn.relu(self.l2(jax.nn.relu(self.l1(x)))))

    class EqxBlock(eqx.Module):
        ln1: eqx.nn.LayerNorm
        qkv: eqx.nn.Linear
        proj: eqx.nn.Linear
        ln2: eqx.nn.LayerNorm
        up: eqx.nn.Linear
        down: eqx.nn.Linear

        def __init__(self, key):
            d, m = BLOCK["width"], BLOCK["mlp"]
            ks = jax.random.split(key, 4)
            self.ln1, self.ln2 = eqx.nn.LayerNorm(d, eps=EPS), eqx.nn.LayerNorm(d, eps=EPS)
            self.qkv = eqx.nn.Linear(d, 3 * d, key=ks[0])
            self.proj = eqx.nn.Linear(d, d, key=ks[1])
            self.up = eqx.nn.Linear(d, m, key=ks[2])
            self.down = eqx.nn.Linear(m, d, key=ks[3])

        def __call__(self, x):  # one sequence (seq, width); batched with vmap
            q, k, v = jnp.split(jax.vmap(self.qkv)(jax.vmap(self.ln1)(x)), 3, axis=-1)
            x = x + jax.vmap(self.proj)(_heads(q, k, v, BLOCK["heads"]))
            return x + jax.vmap(self.down)(jax.nn.gelu(jax.vmap(self.up)(jax.vmap(self.ln2)(x))))

    x, y = _data(model)
    net = (EqxMLP if model == "mlp" else EqxBlock)(jax.random.key(0))
    opt = optax.adam(LR)

    def loss_fn(net, x, y):
        return jnp.mean((jax.vmap(net)(x) - y) ** 2)

    def make():
        def step(net, opt_state, x, y, _loss=None):
            loss, grads = eqx.filter_value_and_grad(loss_fn)(net, x, y)
            updates, opt_state = opt.update(grads, opt_state, eqx.filter(net, eqx.is_array))
            return eqx.apply_updates(net, updates), opt_state, x, y, loss

        return eqx.filter_jit(step)

    state = (net, opt.init(eqx.filter(net, eqx.is_inexact_array)), x, y, None)
    return Case(make(), state, lambda: jax.vmap(net)(x), make)


# --- Flax NNX ------------------------------------------------------------------------------
def _nnx_case(model: str) -> Case:
    from flax import nnx

    class NnxMLP(nnx.Module):
        def __init__(self, rngs):
            self.l1 = nnx.Linear(MLP["d_in"], MLP["hidden"], rngs=rngs)
            self.l2 = nnx.Linear(MLP["hidden"], MLP["hidden"], rngs=rngs)
            self.l3 = nnx.Linear(MLP["hidden"], MLP["d_out"], rngs=rngs)

        def __call__(self, x):
            return self.l3(jax.nn.relu(self.l2(jax.nn.relu(self.l1(x)))))

    class NnxBlock(nnx.Module):
        def __init__(self, rngs):
            d, m = BLOCK["width"], BLOCK["mlp"]
            self.ln1 = nnx.LayerNorm(d, epsilon=EPS, rngs=rngs)
            self.qkv = nnx.Linear(d, 3 * d, rngs=rngs)
            self.proj = nnx.Linear(d, d, rngs=rngs)
            self.ln2 = nnx.LayerNorm(d, epsilon=EPS, rngs=rngs)
            self.up = nnx.Linear(d, m, rngs=rngs)
            self.down = nnx.Linear(m, d, rngs=rngs)

        def __call__(self, x):
            q, k, v = jnp.split(self.qkv(self.ln1(x)), 3, axis=-1)
            x = x + self.proj(_heads(q, k, v, BLOCK["heads"]))
            return x + self.down(jax.nn.gelu(self.up(self.ln2(x))))

    x, y = _data(model)
    net = (NnxMLP if model == "mlp" else NnxBlock)(nnx.Rngs(0))
    optimizer = nnx.Optimizer(net, optax.adam(LR), wrt=nnx.Param)

    def make():
        def step(net, optimizer, x, y, _loss=None):
            loss, grads = nnx.value_and_grad(lambda net: jnp.mean((net(x) - y) ** 2))(net)
            optimizer.update(net, grads)
            return net, optimizer, x, y, loss

        return nnx.jit(step)

    return Case(make(), (net, optimizer, x, y, None), lambda: net(x), make)


BUILDERS = {"raw JAX": _raw_case, "blox": _blox_case, "Equinox": _eqx_case, "Flax NNX": _nnx_case}


def build(model: str, lib: str, abstract: bool = False) -> Case:
    """The train step and forward call of ``model`` ('mlp' or 'block') written in ``lib``.

    ``abstract=True`` (raw JAX and blox only) builds the state as ShapeDtypeStructs,
    enough to lower and compile the step without allocating anything.
    """
    if abstract:
        return BUILDERS[lib](model, abstract=True)
    return BUILDERS[lib](model)


# --- measurement ---------------------------------------------------------------------------
def _ready(tree: Any) -> Any:
    return jax.block_until_ready(tree)


def _time(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    _ready(fn())
    return time.perf_counter() - t0


def _rotated(r: int) -> tuple[str, ...]:
    # Rotate who goes first each round, so no library always runs right after another.
    return LIBS[r % len(LIBS) :] + LIBS[: r % len(LIBS)]


def _paired(per_round: list[dict[str, float]]) -> dict[str, float]:
    """Median over rounds of each library's time divided by raw JAX's in the same round.

    Pairing by round cancels slow drifts in machine load, which a ratio of two
    global medians does not.
    """
    return {lib: statistics.median(r[lib] / r["raw JAX"] for r in per_round) for lib in LIBS}


def measure(model: str, rounds: int, calls: int, eager_calls: int, compiles: int) -> dict[str, dict[str, float]]:
    cases = {lib: build(model, lib) for lib in LIBS}
    for case in cases.values():  # compile the timed steps and warm the eager op caches
        case.state = _ready(case.step(*case.state))
        _time(case.forward)
    first: list[dict[str, float]] = []
    for r in range(compiles):
        # First call of a freshly built and jitted step = trace + compile + one run.
        first.append({lib: _time(lambda case=cases[lib]: case.make_step()(*case.state)) for lib in _rotated(r)})
    step: list[dict[str, float]] = []
    eager: list[dict[str, float]] = []
    for r in range(rounds):
        step_r, eager_r = {}, {}
        for lib in _rotated(r):
            case = cases[lib]
            times = []
            for _ in range(calls):
                t0 = time.perf_counter()
                case.state = _ready(case.step(*case.state))
                times.append(time.perf_counter() - t0)
            step_r[lib] = statistics.median(times)
            eager_r[lib] = statistics.median(_time(case.forward) for _ in range(eager_calls))
        step.append(step_r)
        eager.append(eager_r)
    out: dict[str, dict[str, float]] = {lib: {} for lib in LIBS}
    for name, per_round in (("step", step), ("eager", eager), ("first", first)):
        ratios = _paired(per_round)
        for lib in LIBS:
            out[lib][name] = statistics.median(r[lib] for r in per_round)
            out[lib][name + "_ratio"] = ratios[lib]
    for lib in LIBS:
        out[lib]["loss"] = float(cases[lib].state[-1])
        out[lib]["flatten"] = _flatten_time(cases[lib].state)
    return out


def _flatten_time(state: tuple, reps: int = 2000) -> float:
    """Median time to flatten and rebuild the train state: the per-call pytree cost of a jitted step."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        leaves, treedef = jax.tree.flatten(state)
        jax.tree.unflatten(treedef, leaves)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def table(results: dict[str, dict[str, dict[str, float]]]) -> str:
    rows = [
        "| model | library | jitted step | step vs raw | eager call | eager vs raw | first call (trace+compile) | vs raw "
        "| state flatten+unflatten |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, res in results.items():
        for lib in LIBS:
            r = res[lib]
            rows.append(
                f"| {model} | {lib} | {r['step'] * 1e3:.3f} ms | {r['step_ratio']:.3f}x "
                f"| {r['eager'] * 1e3:.2f} ms | {r['eager_ratio']:.2f}x "
                f"| {r['first'] * 1e3:.0f} ms | {r['first_ratio']:.2f}x | {r['flatten'] * 1e6:.0f} us |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    rounds, calls, eager_calls, compiles = (3, 3, 1, 1) if quick else (60, 7, 3, 3)
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, {jax.device_count()} device(s)")
    print(f"MLP {MLP}\nblock {BLOCK}")
    print(
        f"{rounds} rounds; each round runs {calls} jitted steps and {eager_calls} eager calls per library "
        f"(order rotated). Times are medians; ratios are medians of per-round ratios to raw JAX; "
        f"first call: {compiles} fresh compiles per library."
    )
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    results = {model: measure(model, rounds, calls, eager_calls, compiles) for model in ("mlp", "block")}
    print(table(results))
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
