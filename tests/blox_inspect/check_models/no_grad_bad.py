"""BX301: the learned scale is only applied in eval mode, so training never updates it."""

from _common import Scaled, make


class Block(Scaled):
    def __call__(self, params, x, *, is_training):
        h, params = self.lin(params, x)
        if not is_training:
            h, params = self.scale(params, h)
        return h, params


def build():
    return make(Block, is_training=False)
