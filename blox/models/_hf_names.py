"""How one blox param is stored in a Hugging Face checkpoint, in the PyTorch and in the Flax naming.

An architecture describes each of its params with an :class:`HFTensor`: the
Hugging Face module name (``h.0.attn.c_attn``), the kind of that module
(Linear, GPT-2's Conv1D, Embedding, ...) and, for fused tensors, which part
is ours. The kind fixes the stored name and layout in both namings:

==========  ==========================  ==========================
kind        PyTorch name, layout         Flax name, layout
==========  ==========================  ==========================
linear      ``.weight`` [out, in]        ``.kernel`` [in, out]
conv1d      ``.weight`` [in, out]        ``.kernel`` [out, in]
embed       ``.weight`` [rows, width]    ``.embedding``
layernorm   ``.weight`` (or ``gamma``)   ``.scale``
rmsnorm     ``.weight``                  ``.weight``
conv        ``.weight`` [O, I, H, W]     ``.kernel`` [H, W, I, O]
raw         the name as is               the name as is
==========  ==========================  ==========================

Biases are ``.bias`` everywhere (``beta`` in old LayerNorms).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (PyTorch suffix, Flax suffix, PyTorch -> blox axis order, Flax -> blox axis order) per kind.
_WEIGHT = {
    "linear": ("weight", "kernel", (1, 0), None),
    "conv1d": ("weight", "kernel", None, (1, 0)),
    "embed": ("weight", "embedding", None, None),
    "layernorm": ("weight", "scale", None, None),
    "rmsnorm": ("weight", "weight", None, None),
    "conv": ("weight", "kernel", (2, 3, 1, 0), None),
}
# Older checkpoints (BERT from TF) name LayerNorm weights gamma/beta.
ALIASES = {"gamma": "weight", "beta": "bias"}


@dataclass(frozen=True)
class HFTensor:
    """One blox param and where a Hugging Face checkpoint keeps it.

    ``path`` is relative to the model's node; for a block param it is relative
    to the block, and ``blocks``/``layer`` say which stack and which block
    (so the same entry serves unrolled blocks ``h/3/...`` and a ScanBlocks
    stack ``h/block/...`` whose axis 0 is the layer). ``split=(axis, part,
    parts)``: ours is part ``part`` of ``parts`` equal slices along our
    ``axis`` of the stored (fused) tensor, as GPT-2's ``c_attn`` holds query,
    key and value. ``fused_shape``: the stored tensor, in our axis order, is
    reshaped to our shape (ViT's patch convolution becomes a Linear).
    ``head``: the tensor sits outside the base model (``lm_head``), so it
    never carries the base-model prefix (``transformer.``, ``model.``).
    """

    path: tuple[str, ...]
    name: str
    kind: str
    param: str = "weight"
    blocks: tuple[str, ...] | None = None
    layer: int | None = None
    split: tuple[int, int, int] | None = None
    fused_shape: tuple[int, ...] | None = None
    head: bool = False  # outside the base model, so never under its prefix (``lm_head``, ``classifier``)

    def model_path(self, scan: bool) -> tuple[str, ...]:
        if self.blocks is None:
            return self.path
        return self.blocks + ("block" if scan else str(self.layer),) + self.path

    def stored_name(self, naming: str) -> str:
        """The tensor's name (without the base-model prefix) in ``'pt'`` or ``'flax'`` naming."""
        if self.kind == "raw":
            return self.name
        if self.param == "bias":
            return f"{self.name}.bias"
        pt, flax, _, _ = _WEIGHT[self.kind]
        return f"{self.name}.{pt if naming == 'pt' else flax}"

    def perm(self, naming: str) -> tuple[int, ...] | None:
        """The axis order taking the stored layout to ours (None: the same)."""
        if self.param == "bias" or self.kind == "raw":
            return None
        _, _, pt, flax = _WEIGHT[self.kind]
        return pt if naming == "pt" else flax

    def fused(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The stored tensor's shape in our axis order, given our param's shape."""
        if self.fused_shape is not None:
            return self.fused_shape
        if self.split is None:
            return tuple(shape)
        axis, _, parts = self.split
        out = list(shape)
        out[axis] *= parts
        return tuple(out)

    def stored_shape(self, shape: tuple[int, ...], naming: str) -> tuple[int, ...]:
        """The stored tensor's shape for our param shape, in the stored layout."""
        fused = self.fused(shape)
        perm = self.perm(naming)
        if perm is None:
            return fused
        out = [0] * len(fused)
        for ours, stored in enumerate(perm):
            out[stored] = fused[ours]
        return tuple(out)

    def stored_index(self, index: tuple[slice, ...], shape: tuple[int, ...], naming: str) -> tuple[slice, ...] | None:
        """The stored slice that holds ``param[index]``, or None when only a whole read can (a reshape)."""
        if self.fused_shape is not None:
            return None
        index = list(index)
        if self.split is not None:
            axis, part, _ = self.split
            start, stop, _ = index[axis].indices(shape[axis])
            offset = part * shape[axis]
            index[axis] = slice(offset + start, offset + stop)
        perm = self.perm(naming)
        if perm is None:
            return tuple(index)
        out = [slice(None)] * len(index)
        for ours, stored in enumerate(perm):
            out[stored] = index[ours]
        return tuple(out)

    def to_ours(self, stored: np.ndarray, shape: tuple[int, ...], naming: str) -> np.ndarray:
        """A stored array (the slice :meth:`stored_index` named, or the whole tensor for a reshape) in our layout."""
        perm = self.perm(naming)
        out = stored if perm is None else np.transpose(stored, perm)
        return out.reshape(shape) if self.fused_shape is not None else out

    def to_stored(self, ours: list[np.ndarray], naming: str = "pt") -> np.ndarray:
        """Our arrays (all ``parts`` of a split, in order) as the one stored tensor."""
        if self.split is not None:
            fused = np.concatenate(ours, axis=self.split[0])
        else:
            (fused,) = ours
        if self.fused_shape is not None:
            fused = fused.reshape(self.fused_shape)
        perm = self.perm(naming)
        if perm is None:
            return fused
        inverse = [0] * len(perm)
        for ours_axis, stored in enumerate(perm):
            inverse[stored] = ours_axis
        return np.transpose(fused, inverse)
