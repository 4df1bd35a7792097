"""Sample rows: the fused elementwise op (bodies as the fusion pass builds them)."""
import numpy as np

from . import Sample, away_from_zero, randn

#: relu(x + b) * x: a broadcasting input, an in-place chain, a value read twice
_BIAS_RELU = (("add", (0, 1), ()), ("relu", (2,), ()), ("mul", (3, 0), ()))
#: the ReLU mask of the backprop: where(a > 0, g, 0), the zero a constant input (the harness
#: builds rows in float32 and float64; a body literal has one fixed dtype)
_RELU_MASK = (("greater", (0, 2), ()), ("where", (3, 1, 2), ()))
#: a DAG body: tanh(x) * tanh(x) - sigmoid(x) * y (one value read twice)
_DAG = (("tanh", (0,), ()), ("mul", (2, 2), ()), ("sigmoid", (0,), ()), ("mul", (4, 1), ()),
        ("sub", (3, 5), ()))

SAMPLES = [
    Sample("fused_elementwise", [away_from_zero(3, 4), away_from_zero(4, seed=1) * 0.1],
           {"body": _BIAS_RELU}, label="bias_relu"),
    Sample("fused_elementwise", [away_from_zero(3, 4), randn(3, 4, seed=2), np.zeros(())],
           {"body": _RELU_MASK}, const=(2,), label="relu_mask"),
    Sample("fused_elementwise", [randn(2, 5), randn(2, 5, seed=3)], {"body": _DAG},
           second_order=True, label="dag"),
]

_LABELS = np.array([2, 0, 4, 1], np.int64)
SAMPLES += [
    Sample("softmax_cross_entropy_and_grad", [randn(4, 5) * 3, _LABELS], label="mean"),
    Sample("softmax_cross_entropy_and_grad", [randn(4, 5, seed=4), _LABELS],
           {"reduction": "sum"}, label="sum"),
]
