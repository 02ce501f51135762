"""Generate text with a Hugging Face causal LM folder (GPT-2, Llama) loaded by ``blox.models.from_hf``.

    python -m examples.generate FOLDER --ids 464,2068,7586 --max-new-tokens 20
    python -m examples.generate FOLDER --prompt "The quick brown" --temperature 0.8 --top-k 50 --top-p 0.9 --seed 0

Decoding uses the KV cache (``blox.models.generate``): greedy by default,
sampled with ``--temperature`` above 0; a fixed ``--seed`` reproduces the
tokens. ``--prompt`` needs a ``tokenizer.json`` in the folder that the
``tokenizers`` library reads (offline, nothing is downloaded); ``--ids``
works with any folder. The output is the token ids, and the text when a
tokenizer is there.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax.numpy as jnp

from blox.models import from_hf, generate

MSG_NO_TOKENIZER = (
    "{folder} has no tokenizer.json that the tokenizers library can read ({why}); pass token ids with --ids "
    "instead of --prompt."
)


def load_tokenizer(folder: str):
    """The folder's ``tokenizer.json`` as a ``tokenizers.Tokenizer``, or None when there is none (or no library)."""
    path = os.path.join(folder, "tokenizer.json")
    if not os.path.isfile(path):
        return None
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    try:
        return Tokenizer.from_file(path)
    except Exception:  # a tokenizer.json this version cannot parse: fall back to ids
        return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", help="a Hugging Face model folder (config.json + safetensors)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--ids", help="comma-separated prompt token ids")
    src.add_argument("--prompt", help="prompt text (needs the folder's tokenizer.json)")
    p.add_argument("--max-new-tokens", type=int, default=20)
    p.add_argument("--temperature", type=float, default=0.0, help="0: greedy")
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eos", type=int, default=None, help="stop token id (default: config.json's eos_token_id)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], default=None)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tokenizer = load_tokenizer(args.folder)
    if args.prompt is not None:
        if tokenizer is None:
            print(MSG_NO_TOKENIZER.format(folder=args.folder, why="missing or unreadable"), file=sys.stderr)
            return 2
        ids = tokenizer.encode(args.prompt).ids
    else:
        try:
            ids = [int(t) for t in args.ids.split(",") if t.strip()]
        except ValueError:
            print(f"--ids: expected comma-separated integers, got {args.ids!r}", file=sys.stderr)
            return 2
    model, params = from_hf(args.folder, dtype=args.dtype)
    eos = args.eos if args.eos is not None else model.cfg.hf_extra.get("eos_token_id")
    eos = eos[0] if isinstance(eos, list) else eos
    out = generate(
        model,
        params,
        jnp.asarray([ids], jnp.int32),
        args.max_new_tokens,
        temperature=args.temperature,
        top_k=args.top_k,
        top_p=args.top_p,
        seed=args.seed,
        eos_token_id=eos if isinstance(eos, int) and 0 <= eos < model.cfg.vocab_size else None,
    )
    tokens = [int(t) for t in out[0]]
    print(",".join(map(str, tokens)))
    if tokenizer is not None:
        print(tokenizer.decode(tokens))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
