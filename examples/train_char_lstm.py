"""Train a character-level LSTM on text that ships with this repository, then sample from it.

    python -m examples.train_char_lstm
    python -m examples.train_char_lstm --steps 3000 --hidden 384 --out out/char_lstm.safetensors

The corpus is every ``docs/*.md`` and ``blox/*.py`` file, concatenated; the
last 10% is held out. The script prints the unigram entropy of the corpus
(the loss of a model that only knows character frequencies) next to the
LSTM's held-out loss, both in nats per character. ``build()`` is a
blox-inspect factory.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import blox as bx


class CharLSTM(bx.Module):
    """Embed -> LSTM -> Linear over time-major ids ``(time, *batch)``; returns logits ``(time, *batch, vocab)``."""

    def __init__(self, graph: bx.Graph, vocab: int, hidden: int, rng: bx.Rng, embed: int = 64):
        super().__init__(graph)
        self.embed = bx.Embed(graph / "embed", vocab, embed, rng)
        self.lstm = bx.LSTM(graph / "lstm", hidden, rng)
        self.head = bx.Linear(graph / "head", vocab, rng)

    def __call__(
        self, params: bx.Params, ids: jax.Array, state=None
    ) -> tuple[tuple[jax.Array, bx.LSTMState], bx.Params]:
        x, params = self.embed(params, ids)
        (h, state), params = self.lstm.apply(params, x, initial_state=state)
        logits, params = self.head(params, h)
        return (logits, state), params

    def step(
        self, params: bx.Params, ids: jax.Array, state: bx.LSTMState
    ) -> tuple[tuple[jax.Array, bx.LSTMState], bx.Params]:
        """One character: ids ``(*batch,)`` -> next-character logits ``(*batch, vocab)``."""
        x, params = self.embed(params, ids)
        (h, state), params = self.lstm(params, x, state)
        logits, params = self.head(params, h)
        return (logits, state), params


def build_model(vocab: int, hidden: int) -> CharLSTM:
    graph = bx.Graph("charlm")
    return CharLSTM(graph / "model", vocab, hidden, bx.Rng(graph / "rng"))


def build():
    """blox-inspect factory: 128 time steps of a batch of 32, vocabulary 96."""
    return build_model(96, 256), (jax.ShapeDtypeStruct((128, 32), jnp.int32),), {}


def sample(model: CharLSTM, params: bx.Params, prompt: list[int], length: int, key: jax.Array, temperature: float):
    """Feeds ``prompt`` and then draws ``length`` characters; returns their ids."""
    step = jax.jit(lambda p, i, s: model.step(p, i, s)[0])
    state = model.lstm.initial_state(())
    for i in prompt[:-1]:
        _, state = step(params, jnp.asarray(i), state)
    out, current = [], jnp.asarray(prompt[-1])
    for t in range(length):
        logits, state = step(params, current, state)
        current = jax.random.categorical(jax.random.fold_in(key, t), logits / temperature)
        out.append(int(current))
    return out


def main(argv: list[str] | None = None) -> dict:
    from tqdm import tqdm

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sample", type=int, default=400, help="characters to sample at the end")
    parser.add_argument("--out", default=os.path.join("out", "char_lstm.safetensors"))
    args = parser.parse_args(argv)

    from examples._text import char_corpus, unigram_entropy  # inside, so the file also loads without the package

    corpus = char_corpus()
    chars, index, train, held_out = corpus.chars, corpus.index, corpus.train, corpus.held_out
    entropy = unigram_entropy(train, len(chars))
    print(f"corpus: {len(corpus.text):,} characters, vocabulary {len(chars)}, unigram entropy {entropy:.3f} nats/char")

    model = build_model(len(chars), args.hidden)
    params = bx.seed_all(model.graph.root, bx.Params(), args.seed)
    _, params = model(params, jnp.zeros((2, 1), jnp.int32))
    trainable, rest = params.locked().split()
    optimizer = optax.chain(
        optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(args.lr, args.steps))
    )
    opt_state = optimizer.init(trainable)

    def loss_fn(trainable, rest, window):
        (logits, _), _ = model(trainable.merge(rest), window[:-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, window[1:]).mean()

    @jax.jit
    def train_step(trainable, opt_state, window):
        loss, grads = jax.value_and_grad(loss_fn)(trainable, rest, window)
        updates, opt_state = optimizer.update(grads, opt_state, trainable)
        return optax.apply_updates(trainable, updates), opt_state, loss

    def windows(data: np.ndarray, starts: np.ndarray) -> np.ndarray:
        # Time-major (seq_len + 1, batch): inputs are [:-1], targets [1:].
        return np.stack([data[s : s + args.seq_len + 1] for s in starts], axis=1)

    gen = np.random.default_rng(args.seed)
    start = time.perf_counter()
    bar = tqdm(range(args.steps), desc="char lstm", unit="step")
    for i in bar:
        starts = gen.integers(0, len(train) - args.seq_len - 1, args.batch_size)
        trainable, opt_state, loss = train_step(trainable, opt_state, windows(train, starts))
        if i % 50 == 0 or i == args.steps - 1:
            bar.set_postfix(loss=f"{float(loss):.3f}")
    seconds = time.perf_counter() - start

    eval_loss = jax.jit(loss_fn)
    starts = np.arange(0, len(held_out) - args.seq_len - 1, args.seq_len)[:256]
    held = float(
        np.mean([eval_loss(trainable, rest, windows(held_out, starts[j : j + 64])) for j in range(0, len(starts), 64)])
    )
    params = trainable.merge(rest)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    bx.save(args.out, params, metadata={"example": "train_char_lstm", "vocabulary": "".join(chars)})

    text_out = ""
    if args.sample:
        prompt = [index[c] for c in "class "]
        drawn = sample(model, params, prompt, args.sample, jax.random.key(args.seed), temperature=0.8)
        text_out = "class " + "".join(chars[i] for i in drawn)
        print("--- sample ---\n" + text_out + "\n--------------")
    print(
        f"held-out loss {held:.3f} nats/char vs unigram entropy {entropy:.3f} nats/char "
        f"(uniform: {math.log(len(chars)):.3f}); final train loss {float(loss):.3f}; "
        f"{args.steps} steps in {seconds:.1f}s; checkpoint {args.out}"
    )
    return {
        "held_out_loss": held,
        "train_loss": float(loss),
        "unigram_entropy": entropy,
        "vocab": len(chars),
        "checkpoint": args.out,
        "sample": text_out,
        "seconds": seconds,
    }


if __name__ == "__main__":
    main()
