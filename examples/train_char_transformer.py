"""Train a character-level Transformer on this repository's own text, then sample from it.

The corpus is every ``docs/*.md`` and ``blox/*.py`` file, concatenated. The
model is a small pre-norm decoder (rotary positions, RMSNorm, SwiGLU) whose
blocks run under ``bx.ScanBlocks``. Training uses optax AdamW with dropout;
the evaluation and sampling calls use the very same Params with
``is_training=False``. Sampling decodes one character at a time with the
attention KV cache inside one jitted ``lax.fori_loop``.

Run::

    python -m examples.train_char_transformer --steps 600 --out out/char

It prints the corpus's unigram entropy (the loss of a model that knows only
character frequencies) next to the model's validation loss, saves a
checkpoint with ``bx.save`` and prints a sample.
"""

import argparse
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

import blox as bx


class CharTransformer(bx.Module):
    """Embedding, ``num_layers`` scanned decoder blocks, RMSNorm and an output head."""

    def __init__(
        self, graph: bx.Graph, vocab_size: int, width: int, num_layers: int, num_heads: int, dropout_rate: float
    ):
        super().__init__(graph)
        self.rng = bx.Rng(graph / "rng")
        self.embed = bx.Embed(graph / "embed", vocab_size, width, self.rng)

        def block(node: bx.Graph) -> bx.TransformerBlock:
            return bx.TransformerBlock(
                node,
                num_heads,
                width // num_heads,
                4 * width,
                self.rng,
                dropout_rate=dropout_rate,
                norm="rms",
                mlp="swiglu",
                rope=True,
                use_bias=False,
            )

        self.blocks = bx.ScanBlocks(graph / "blocks", block, num_layers)
        self.norm = bx.RMSNorm(graph / "norm")
        self.head = bx.Linear(graph / "head", vocab_size, self.rng)

    def init_cache(self, batch: int, max_len: int):
        return self.blocks.init_cache(batch, max_len)

    def __call__(self, params: bx.Params, ids: jax.Array, *, is_training: bool, cache=None):
        x, params = self.embed(params, ids)
        out, params = self.blocks(params, x, causal=True, cache=cache, is_training=is_training)
        x, cache = out if cache is not None else (out, None)
        x, params = self.norm(params, x)
        logits, params = self.head(params, x)
        return ((logits, cache) if cache is not None else logits), params


def batches(data: np.ndarray, batch: int, seq_len: int, rs: np.random.RandomState):
    starts = rs.randint(0, len(data) - seq_len - 1, batch)
    window = np.stack([data[s : s + seq_len + 1] for s in starts])
    return window[:, :-1], window[:, 1:]


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--eval-batches", type=int, default=8)
    ap.add_argument("--sample-len", type=int, default=300)
    ap.add_argument("--prompt", default="class ")
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=os.path.join("out", "char_transformer"))
    return ap.parse_args(argv)


def main(argv=None) -> dict:
    """Trains, evaluates, checkpoints and samples; returns the numbers it printed."""
    from examples._text import char_corpus, unigram_entropy  # inside, so the file also loads without the package

    args = parse_args(argv)
    corpus = char_corpus()
    chars, index, train, val = corpus.chars, corpus.index, corpus.train, corpus.held_out
    unigram = unigram_entropy(train, len(chars))
    print(f"corpus: {len(corpus.text):,} characters, vocabulary {len(chars)}; unigram entropy {unigram:.3f} nats")

    graph = bx.Graph("char")
    model = CharTransformer(graph / "model", len(chars), args.width, args.layers, args.heads, args.dropout)
    rs = np.random.RandomState(args.seed)
    x0, _ = batches(train, args.batch, args.seq_len, rs)
    init = jax.jit(lambda p, x: model(p, x, is_training=False)[1])
    params = init(bx.seed_all(graph, bx.Params(), args.seed), x0).locked()
    trainable, state = params.split()
    print(f"model: {sum(p.value.size for p in trainable.values()):,} trainable params")

    schedule = optax.warmup_cosine_decay_schedule(0.0, args.lr, min(100, args.steps // 10 + 1), max(args.steps, 1))
    opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=0.01))
    opt_state = opt.init(trainable)

    def xent(logits, y):
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def loss_fn(tr, state, x, y):
        logits, new = model(tr.merge(state), x, is_training=True)
        return xent(logits, y), new.split()[1]  # the Rng counter moved on

    @jax.jit
    def train_step(tr, state, opt_state, x, y):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(tr, state, x, y)
        updates, opt_state = opt.update(grads, opt_state, tr)
        return optax.apply_updates(tr, updates), state, opt_state, loss

    @jax.jit
    def eval_loss(params, x, y):
        logits, _ = model(params, x, is_training=False)
        return xent(logits, y)

    val_rs = np.random.RandomState(args.seed + 1)
    val_batches = [batches(val, args.batch, args.seq_len, val_rs) for _ in range(args.eval_batches)]

    def evaluate(params):
        return float(np.mean([eval_loss(params, x, y) for x, y in val_batches]))

    start_loss = evaluate(params)
    t0 = time.perf_counter()
    bar = tqdm(range(args.steps), desc="train", unit="step")
    loss = float("nan")
    for step in bar:
        x, y = batches(train, args.batch, args.seq_len, rs)
        trainable, state, opt_state, loss = train_step(trainable, state, opt_state, x, y)
        if step % 20 == 0 or step == args.steps - 1:
            bar.set_postfix(loss=f"{float(loss):.3f}")
    bar.close()
    params = trainable.merge(state)
    final = evaluate(params)
    print(
        f"validation loss: {start_loss:.3f} -> {final:.3f} nats after {args.steps} steps "
        f"({time.perf_counter() - t0:.1f}s); unigram entropy {unigram:.3f} nats"
    )

    os.makedirs(args.out, exist_ok=True)
    ckpt = os.path.join(args.out, "char_transformer.safetensors")
    bx.save(ckpt, params, metadata={"vocab": json.dumps("".join(chars)), "argv": json.dumps(vars(args))})
    print(f"checkpoint: {ckpt}")

    prompt = [index[c] for c in args.prompt if c in index] or [0]
    sample = generate(model, params, prompt, args.sample_len, args.temperature, jax.random.key(args.seed))
    sample_text = "".join(chars[i] for i in sample)
    print("sample:\n" + sample_text)
    return {
        "unigram": unigram,
        "start_loss": start_loss,
        "final_loss": final,
        "checkpoint": ckpt,
        "sample": sample_text,
    }


def generate(model: CharTransformer, params: bx.Params, prompt: list, length: int, temperature: float, key) -> list:
    """Feeds the prompt, then samples ``length`` characters, one position per step with the KV cache."""
    total = len(prompt) + length
    n_prompt = len(prompt)

    @jax.jit
    def run(params, tokens, key):
        def body(i, carry):
            tokens, cache, key = carry
            (logits, cache), _ = model(params, tokens[i][None, None], is_training=False, cache=cache)
            key, sub = jax.random.split(key)
            drawn = jax.random.categorical(sub, logits[0, -1] / temperature).astype(jnp.int32)
            nxt = jnp.where(i + 1 < n_prompt, tokens[i + 1], drawn)
            return tokens.at[i + 1].set(nxt), cache, key

        tokens, _, _ = jax.lax.fori_loop(0, total - 1, body, (tokens, model.init_cache(1, total), key))
        return tokens

    tokens = jnp.zeros(total, jnp.int32).at[:n_prompt].set(jnp.array(prompt, jnp.int32))
    return [int(t) for t in run(params, tokens, key)]


if __name__ == "__main__":
    main()
