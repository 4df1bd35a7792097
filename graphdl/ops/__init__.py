"""graphdl's ops, one module per family; importing this package registers them all."""
from . import elementwise, reduce, linalg, shape, slice, split, scatter, gather  # noqa: F401
from . import indexing  # noqa: F401
from . import activations, losses  # noqa: F401
from . import recurrent  # noqa: F401
from . import gradient  # noqa: F401 - ONNX Gradient requests (passes.expand_gradients)
from .activations import elu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .elementwise import (abs, add, cast, div, equal, exp, greater, greater_or_equal, identity,
                          less, less_or_equal, log, logical_and, logical_not, logical_or,
                          logical_xor, maximum, minimum, mul, neg, pow, reciprocal, sign, sqrt,
                          sub, where)
from .linalg import gemm, matmul
from .losses import (binary_cross_entropy, binary_cross_entropy_with_logits, mse_loss, one_hot,
                     softmax_cross_entropy, softmax_cross_entropy_onehot)
from .reduce import reduce_max, reduce_mean, reduce_sum
from .shape import (broadcast_to, constant_of_shape, dim_size, expand, flatten, reshape, shape,
                    shape_of, squeeze, transpose, unsqueeze, zeros_like)
from .slice import arange, concat, slice_
from .gather import gather, scatter_add_axis
from .pad import pad
from .conv import conv, conv_transpose, conv_weight_grad
from .max_pool_grad import max_pool_grad
from .pool import avg_pool, global_avg_pool, global_max_pool, max_pool, max_pool_with_indices
from .split import split
from .tile import tile
from .lrn import lrn
from .scatter import gather_elements, scatter_add, scatter_reduce
from .dropout import dropout
from .normalization import batch_norm, batch_norm_train
from .recurrent import gru, lstm, rnn
from .fused import fused_elementwise
from .strings import string_normalizer
from .special import cos, erf, sin
from .gelu import gelu, hard_sigmoid, hard_swish
from .positions import argmax, cumsum, one_hot_values, trilu
from .einsum import einsum
from .attention import attention
from .mod import mod
from .resize import resize
from .layer_norm import layer_norm, layer_norm_stats, rms_norm

__all__ = [
    "dropout",
    "batch_norm",
    "batch_norm_train",
    "elu",
    "leaky_relu",
    "log_softmax",
    "relu",
    "sigmoid",
    "softmax",
    "tanh",
    "abs",
    "add",
    "cast",
    "div",
    "equal",
    "exp",
    "greater",
    "greater_or_equal",
    "identity",
    "less",
    "less_or_equal",
    "log",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "maximum",
    "minimum",
    "mul",
    "neg",
    "pow",
    "reciprocal",
    "sign",
    "sqrt",
    "sub",
    "where",
    "gemm",
    "matmul",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "mse_loss",
    "one_hot",
    "softmax_cross_entropy",
    "softmax_cross_entropy_onehot",
    "reduce_max",
    "reduce_mean",
    "reduce_sum",
    "broadcast_to",
    "concat",
    "constant_of_shape",
    "dim_size",
    "expand",
    "flatten",
    "gather",
    "reshape",
    "shape",
    "shape_of",
    "squeeze",
    "transpose",
    "unsqueeze",
    "zeros_like",
    "slice_",
    "split",
    "tile",
    "lrn",
    "scatter_add_axis",
    "scatter_add",
    "scatter_reduce",
    "gather_elements",
    "pad",
    "arange",
    "conv",
    "conv_transpose",
    "conv_weight_grad",
    "avg_pool",
    "global_avg_pool",
    "global_max_pool",
    "max_pool",
    "max_pool_grad",
    "max_pool_with_indices",
    "rnn",
    "lstm",
    "gru",
    "fused_elementwise",
    "string_normalizer",
    "cos",
    "erf",
    "sin",
    "gelu",
    "hard_sigmoid",
    "hard_swish",
    "layer_norm",
    "layer_norm_stats",
    "rms_norm",
    "argmax",
    "cumsum",
    "one_hot_values",
    "trilu",
    "einsum",
    "attention",
    "mod",
    "resize",
]
