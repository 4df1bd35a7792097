"""The layers of mobile CNNs (MobileNetV2/V3): DepthwiseConv2d (one filter per channel, a
grouped convolution with groups = channels) and GlobalAvgPool ([N, C, H, W] -> [N, C]).
ReLU6 is ``relu6`` (a clip to [0, 6]); hard swish is ``graphdl.hard_swish``."""
from __future__ import annotations

from ..core.builder import Tensor
from ..ops.elementwise import maximum, minimum
from ..ops.pool import global_avg_pool
from ..ops.shape import flatten
from .conv import Conv2d, IntOrSeq
from .dense import Activation
from .layer import Layer, Seed


class DepthwiseConv2d(Conv2d):
    """``multiplier`` filters per input channel, each seeing only its channel."""

    kind = "dwconv2d"

    def __init__(self, channels: int, kernel_size: IntOrSeq, stride: IntOrSeq = 1,
                 padding: IntOrSeq = 0, multiplier: int = 1, activation: Activation = None,
                 bias: bool = True, name: str | None = None, seed: Seed = None):
        super().__init__(channels, channels * multiplier, kernel_size, stride, padding,
                         groups=channels, activation=activation, bias=bias, name=name,
                         seed=seed)


class GlobalAvgPool(Layer):
    """The mean over the spatial axes: [N, C, H, W] -> [N, C] (or [N, C, 1, 1] with
    ``keepdims``)."""

    kind = "gap"

    def __init__(self, keepdims: bool = False):
        super().__init__()
        self.keepdims = keepdims

    def __call__(self, x: Tensor) -> Tensor:
        y = global_avg_pool(x)
        return y if self.keepdims else flatten(y, 1)


def relu6(x: Tensor) -> Tensor:
    """min(max(x, 0), 6), as PyTorch's ReLU6 (exported as Clip)."""
    return minimum(maximum(x, 0.0), 6.0)
