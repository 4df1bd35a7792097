"""Sample rows: conv, conv_transpose, conv_weight_grad (ops/conv.py) and the pooling ops
(ops/pool.py). onnxruntime 1.32 has no float64 kernel for Conv, ConvTranspose, AveragePool or
GlobalAveragePool, so those rows compare the engines in float32 (``ort="f32"``); the VJP and
second-order checks still run in float64."""
import numpy as np

from . import Sample, randn


def distinct(*shape: int, seed: int = 0) -> np.ndarray:
    """Values spaced >= 0.05 apart, so no max-pool window has a near tie under finite
    differences (the gradient is not differentiable at a tie)."""
    n = int(np.prod(shape))
    return np.random.default_rng(seed).permutation(n).reshape(shape) * 0.05 - n * 0.025


def _conv(*, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1, auto_pad="NOTSET"):
    return {"strides": strides, "pads": pads, "dilations": dilations, "group": group,
            "auto_pad": auto_pad}


def _geo(r: int, strides, pads, dilations=None, group=1):
    return {"strides": strides, "pads": pads, "dilations": dilations or (1,) * r,
            "group": group}


def _pool(kernel, strides=None, pads=None, ceil_mode=0, auto_pad="NOTSET", dilations=None):
    return {"kernel_shape": kernel, "strides": strides or kernel,
            "pads": pads or (0,) * (2 * len(kernel)), "ceil_mode": ceil_mode,
            "auto_pad": auto_pad, "dilations": dilations}


CONV = [
    Sample("conv", [randn(2, 3, 6, 5), randn(4, 3, 3, 3, seed=1), randn(4, seed=2)],
           _conv(pads=(1, 1, 1, 1)), second_order=True, ort="f32"),
    Sample("conv", [randn(2, 3, 6, 5), randn(4, 3, 3, 3, seed=1), randn(4, seed=2)],
           {**_conv(pads=(1, 1, 1, 1)), "activation": "relu"}, ort="f32", label="relu"),
    Sample("conv", [randn(2, 2, 5, 5), randn(4, 1, 3, 3, seed=1)],
           {**_conv(group=2), "activation": "tanh"}, second_order=True, ort="f32",
           label="tanh-group"),
    Sample("conv", [randn(2, 4, 7, 6), randn(6, 2, 3, 2, seed=1)],
           _conv(strides=(2, 1), pads=(1, 0, 2, 1), dilations=(1, 2), group=2),
           ort="f32", label="stride-dilation-group"),
    Sample("conv", [randn(1, 1, 5), randn(1, 1, 3, seed=1)],
           {"strides": (2,), "pads": (1, 1)}, second_order=True, ort="f32",
           label="1d-seed-example"),
    Sample("conv", [randn(2, 2, 7, 7), randn(3, 2, 3, 3, seed=1)],
           _conv(strides=(2, 2), auto_pad="SAME_UPPER"), ort="f32", label="same-upper"),
    Sample("conv", [randn(2, 2, 6, 6), randn(3, 2, 2, 2, seed=1)],
           _conv(strides=(2, 2), auto_pad="SAME_LOWER"), ort="f32", label="same-lower"),
    Sample("conv", [randn(2, 2, 6, 6), randn(3, 2, 3, 3, seed=1)],
           _conv(strides=(2, 2), auto_pad="VALID"), ort="f32", label="valid"),
    Sample("conv_transpose", [randn(2, 4, 3, 4), randn(4, 3, 3, 2, seed=1), randn(6, seed=2)],
           {**_geo(2, (2, 1), (1, 0, 0, 1), (1, 2), 2), "output_padding": (1, 0)},
           second_order=True, ort="f32"),
    Sample("conv_transpose", [randn(1, 2, 4), randn(2, 3, 3, seed=1)],
           {**_geo(1, (2,), (1, 1)), "output_padding": (1,)}, ort="f32", label="1d"),
    Sample("conv_weight_grad", [randn(2, 3, 6, 5), randn(2, 4, 3, 3, seed=1)],
           {**_geo(2, (2, 2), (1, 1, 0, 1)), "kernel_shape": (3, 3)}, second_order=True,
           ort="f32"),
    Sample("conv_weight_grad", [randn(2, 4, 7, 6), randn(2, 6, 4, 5, seed=1)],
           {**_geo(2, (2, 1), (1, 0, 2, 1), (1, 2), 2), "kernel_shape": (3, 2)}, ort="f32",
           label="grouped"),
]

POOL = [
    Sample("max_pool", [distinct(2, 3, 6, 6)], _pool((2, 2))),
    Sample("max_pool", [distinct(2, 2, 7, 6)], _pool((3, 2), (2, 2), (0, 0, 1, 0), 1),
           label="pads-ceil"),
    Sample("max_pool", [distinct(2, 2, 7, 7)], _pool((3, 3), (1, 1), dilations=(2, 1)),
           label="dilated-overlap"),
    Sample("max_pool", [distinct(1, 2, 9)], _pool((3,), (2,), (1, 1)), label="1d"),
    Sample("max_pool", [distinct(1, 2, 5, 5)], _pool((3, 3), (2, 2), auto_pad="SAME_UPPER"),
           label="same-upper"),
    Sample("max_pool_grad", [randn(2, 2, 3, 3), np.array([[[[0, 2, 2], [7, 8, 8],
                                                            [13, 13, 15]]] * 2] * 2),
                             randn(2, 2, 4, 4, seed=1)], const=(1,), second_order=True),
    Sample("avg_pool", [randn(2, 3, 6, 6)], {**_pool((2, 2)), "count_include_pad": 0},
           second_order=True, ort="f32"),
    Sample("avg_pool", [randn(2, 2, 7, 6)], {**_pool((3, 2), (2, 2), (0, 0, 1, 0), 1),
                                             "count_include_pad": 0},
           ort="f32", label="pads-ceil-exclude"),
    Sample("avg_pool", [randn(2, 2, 7, 6)], {**_pool((3, 3), (2, 1), (1, 1, 1, 1)),
                                             "count_include_pad": 1},
           ort="f32", label="pads-include"),
    Sample("avg_pool", [randn(1, 2, 9)], {**_pool((3,), (2,), (1, 1), 1),
                                          "count_include_pad": 1}, ort="f32", label="1d-ceil"),
    Sample("global_avg_pool", [randn(2, 3, 4, 5)], second_order=True, ort="f32"),
    Sample("global_max_pool", [distinct(2, 3, 4, 5)]),
]

SAMPLES = CONV + POOL
