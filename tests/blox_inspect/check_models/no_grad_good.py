"""Twin of no_grad_bad: the scale is applied in both modes."""

from _common import Scaled, make


class Block(Scaled):
    def __call__(self, params, x, *, is_training):
        h, params = self.lin(params, x)
        return self.scale(params, h)


def build():
    return make(Block, is_training=False)
