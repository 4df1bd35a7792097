"""graphdl's ops, one module per family; importing this package registers them all."""
from . import elementwise, reduce, linalg, shape, slice, split, scatter, activations, losses  # noqa: F401
from .activations import elu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .elementwise import (abs, add, cast, div, equal, exp, greater, greater_or_equal, identity,
                          less, less_or_equal, log, maximum, minimum, mul, neg, pow, reciprocal,
                          sign, sqrt, sub, where)
from .linalg import gemm, matmul
from .losses import (binary_cross_entropy, binary_cross_entropy_with_logits, mse_loss,
                     softmax_cross_entropy, softmax_cross_entropy_onehot)
from .reduce import reduce_max, reduce_mean, reduce_sum
from .shape import (broadcast_to, concat, constant_of_shape, dim_size, expand, flatten, gather,
                    reshape, shape, shape_of, squeeze, transpose, unsqueeze, zeros_like)
from .slice import slice_
from .split import split
from .scatter import scatter_add_axis

__all__ = [
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
    "scatter_add_axis",
]
