"""Train an MLP or a small CNN on scikit-learn's bundled 8x8 digits (1,797 images, no download).

    python -m examples.train_digits --model mlp
    python -m examples.train_digits --model cnn --steps 1500 --out out/digits_cnn.safetensors

The run is seeded and reproducible. It uses optax (AdamW), Dropout and
BatchNorm. The training and evaluation models are two separate objects built
on identically named graphs: Params are keyed by graph path, so the Params one
trains are the Params the other evaluates. ``build()`` is a blox-inspect
factory (``blox-inspect examples/train_digits.py``).
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import blox as bx


def _flatten(x: jax.Array) -> jax.Array:
    return jnp.reshape(x, x.shape[:-3] + (-1,))


def _pool(x: jax.Array) -> jax.Array:
    return bx.max_pool(x, (2, 2))


def build_model(kind: str, dropout: float, width: int = 128) -> bx.Module:
    """The classifier: ``kind='mlp'`` takes (batch, 64) pixels, ``kind='cnn'`` takes (batch, 8, 8, 1) images."""
    graph = bx.Graph("digits")
    rng = bx.Rng(graph / "rng")
    node = graph / kind
    if kind == "mlp":
        layers = [
            bx.Linear(node / "hidden", width, rng),
            bx.BatchNorm(node / "bn"),
            jax.nn.relu,
            bx.Dropout(node / "drop", dropout, rng),
            bx.Linear(node / "out", 10, rng),
        ]
    elif kind == "cnn":
        c = max(width // 4, 1)
        layers = [
            bx.Conv(node / "conv1", (3, 3), c, rng, use_bias=False),
            bx.BatchNorm(node / "bn1"),
            jax.nn.relu,
            bx.Conv(node / "conv2", (3, 3), 2 * c, rng, use_bias=False),
            bx.BatchNorm(node / "bn2"),
            jax.nn.relu,
            _pool,  # 8x8 -> 4x4
            _flatten,
            bx.Dropout(node / "drop", dropout, rng),
            bx.Linear(node / "hidden", width, rng),
            jax.nn.relu,
            bx.Linear(node / "out", 10, rng),
        ]
    else:
        raise ValueError(f"--model must be 'mlp' or 'cnn', got {kind!r}")
    return bx.Sequential(node, layers)


def load_data(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stratified 80/20 split of the digits, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    if kind == "cnn":
        x = x.reshape(-1, 8, 8, 1)
    y = digits.target.astype(np.int32)
    return tuple(train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y))


@functools.partial(jax.jit, static_argnums=0)
def _predict(model: bx.Module, params: bx.Params, x: jax.Array) -> jax.Array:
    return jnp.argmax(model(params, x, is_training=False)[0], axis=-1)


def accuracy(model: bx.Module, params: bx.Params, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(_predict(model, params, x)) == y))


def build():
    """blox-inspect factory: the CNN on a batch of 32 digits, in eval mode."""
    return build_model("cnn", 0.1), (jax.ShapeDtypeStruct((32, 8, 8, 1), jnp.float32),), {"is_training": False}


def main(argv: list[str] | None = None) -> dict:
    from tqdm import tqdm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--width", type=int, default=128, help="hidden width (the CNN uses width/4 and width/2 channels)"
    )
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="checkpoint path (default out/digits_<model>.safetensors)")
    args = parser.parse_args(argv)
    out = args.out or os.path.join("out", f"digits_{args.model}.safetensors")

    x_train, x_test, y_train, y_test = load_data(args.model, args.seed)
    train_model = build_model(args.model, args.dropout, args.width)
    # A second, separately built model: same graph names, so the same Params fit it.
    eval_model = build_model(args.model, args.dropout, args.width)

    params = bx.seed_all(train_model.graph.root, bx.Params(), args.seed)
    _, params = train_model(params, x_train[:2], is_training=True)
    trainable, state = params.locked().split()
    schedule = optax.cosine_decay_schedule(args.lr, max(args.steps, 1))
    optimizer = optax.adamw(schedule, weight_decay=1e-4)
    opt_state = optimizer.init(trainable)

    @jax.jit
    def train_step(trainable, state, opt_state, x, y):
        def loss_fn(trainable):
            logits, new = train_model(trainable.merge(state), x, is_training=True)
            loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
            return loss, new.split()[1]  # updated BatchNorm statistics and Rng counter

        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), state, opt_state, loss

    order = np.random.default_rng(args.seed)
    start = time.perf_counter()
    bar = tqdm(range(args.steps), desc=f"digits {args.model}", unit="step")
    loss = float("nan")
    for i in bar:
        batch = order.choice(len(x_train), args.batch_size, replace=False)
        trainable, state, opt_state, loss = train_step(trainable, state, opt_state, x_train[batch], y_train[batch])
        if i % 50 == 0 or i == args.steps - 1:
            bar.set_postfix(loss=f"{float(loss):.4f}")
    train_seconds = time.perf_counter() - start

    params = trainable.merge(state)
    test_acc = accuracy(eval_model, params, x_test, y_test)
    train_acc = accuracy(eval_model, params, x_train, y_train)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    bx.save(out, params, metadata={"example": "train_digits", "model": args.model})
    print(
        f"{args.model}: test accuracy {test_acc:.4f} ({len(y_test)} images), train accuracy {train_acc:.4f}, "
        f"{args.steps} steps in {train_seconds:.1f}s; checkpoint {out}"
    )
    return {
        "test_accuracy": test_acc,
        "train_accuracy": train_acc,
        "loss": float(loss),
        "checkpoint": out,
        "seconds": train_seconds,
    }


if __name__ == "__main__":
    main()
