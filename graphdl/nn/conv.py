"""Convolutional layers: Conv1d / Conv2d (convolution plus the
detection nonlinearity), MaxPool2d / AvgPool2d and Flatten, composable with Dense into the
conv -> ReLU -> pool -> flatten -> dense framework::

    net = Sequential(Conv2d(1, 16, 3, padding=1, activation="relu"), MaxPool2d(2),
                     Flatten(), Dense(16 * 4 * 4, 10))

Layouts are NCW / NCHW, weights [out_channels, in_channels / groups, kernel...] as in ONNX and
PyTorch, so weights carry over from either unchanged.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.builder import Tensor, user_location
from ..core.errors import ShapeError
from ..ops.conv import conv
from ..ops.pool import avg_pool, max_pool
from ..ops.shape import flatten
from ..core.types import dims_equal, shape_str
from .dense import Activation, default_init, get_activation
from .init import Init, get_init
from .layer import Layer, Seed

IntOrSeq = int | Sequence[int]


def _tuple(v: IntOrSeq, r: int) -> tuple[int, ...]:
    return (int(v),) * r if isinstance(v, (int, np.integer)) else tuple(int(a) for a in v)


class _ConvNd(Layer):
    """``act(conv(x, W) + b)`` over ``rank`` spatial axes."""

    rank = 2

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntOrSeq,
                 stride: IntOrSeq = 1, padding: IntOrSeq = 0, dilation: IntOrSeq = 1,
                 groups: int = 1, activation: Activation = None, init: str | Init | None = None,
                 bias: bool = True, name: str | None = None, seed: Seed = None):
        super().__init__(name, seed)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{in_channels} in and {out_channels} out channels must both "
                             f"divide into {groups} groups")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel = _tuple(kernel_size, self.rank)
        self.stride, self.dilation = _tuple(stride, self.rank), _tuple(dilation, self.rank)
        self.padding = padding if isinstance(padding, str) else _tuple(padding, self.rank)
        self.groups, self.bias = int(groups), bias
        self.activation = get_activation(activation)
        self.init = get_init(init or default_init(self.activation))

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        fan_in = self.in_channels // self.groups * int(np.prod(self.kernel))
        fan_out = self.out_channels // self.groups * int(np.prod(self.kernel))
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel
        p = {"W": self.init(rng, shape, fan_in, fan_out)}
        if self.bias:
            p["b"] = np.zeros(self.out_channels)
        return p

    def forward(self, x: Tensor, p: dict[str, Tensor]) -> Tensor:
        if x.shape is None or len(x.shape) != self.rank + 2 or \
                dims_equal(x.shape[1], self.in_channels) is False:
            where = p["W"].name.rsplit(".", 1)[0]
            loc = user_location()
            raise ShapeError(f"{where}: expects inputs [N, {self.in_channels}, "
                             f"{', '.join('S' * self.rank)}], got {shape_str(x.shape)}"
                             + (f" at {loc}" if loc else ""))
        pads = {"auto_pad": self.padding} if isinstance(self.padding, str) else \
            {"pads": self.padding}
        h = conv(x, p["W"], p.get("b"), strides=self.stride, dilations=self.dilation,
                 group=self.groups, **pads)
        return h if self.activation is None else self.activation(h)


class Conv1d(_ConvNd):
    """1-D convolution over [N, C, W] (N=5, F=3, Q=1, s=2 gives W=(5 - 3 + 2)/2 + 1 = 3).
    ``padding`` is an int, one per axis, or an ONNX auto_pad string ("SAME_UPPER", ...)."""

    kind = "conv1d"
    rank = 1


class Conv2d(_ConvNd):
    """2-D convolution over [N, C, H, W] with P = ``out_channels`` kernels of size
    ``in_channels / groups`` x F x F, stride s, zero padding Q."""

    kind = "conv2d"
    rank = 2


class _Pool2d(Layer):
    """A parameterless pooling layer over [N, C, H, W]; strides default to the kernel."""

    def __init__(self, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
                 padding: IntOrSeq = 0, ceil_mode: bool = False):
        super().__init__()
        self.kernel = _tuple(kernel_size, 2)
        self.stride = self.kernel if stride is None else _tuple(stride, 2)
        self.padding, self.ceil_mode = _tuple(padding, 2), ceil_mode

    def __call__(self, x: Tensor) -> Tensor:
        return self.pool(x)

    def pool(self, x: Tensor) -> Tensor:
        raise NotImplementedError


class MaxPool2d(_Pool2d):
    """The max over each window (backward: to each window's first maximum)."""

    kind = "maxpool2d"

    def pool(self, x: Tensor) -> Tensor:
        return max_pool(x, self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode)


class AvgPool2d(_Pool2d):
    """The mean over each window; padding counts only with ``count_include_pad``."""

    kind = "avgpool2d"

    def __init__(self, kernel_size: IntOrSeq, stride: IntOrSeq | None = None,
                 padding: IntOrSeq = 0, ceil_mode: bool = False,
                 count_include_pad: bool = False):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad

    def pool(self, x: Tensor) -> Tensor:
        return avg_pool(x, self.kernel, self.stride, self.padding, ceil_mode=self.ceil_mode,
                        count_include_pad=self.count_include_pad)


class Flatten(Layer):
    """[N, d1, d2, ...] -> [N, d1 * d2 * ...] (ONNX Flatten at ``axis``); a symbolic N stays."""

    kind = "flatten"

    def __init__(self, axis: int = 1):
        super().__init__()
        self.axis = axis

    def __call__(self, x: Tensor) -> Tensor:
        return flatten(x, self.axis)
