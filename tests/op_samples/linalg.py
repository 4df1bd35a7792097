"""Sample rows: matmul and gemm."""
from . import Sample, randn

SAMPLES = [
    Sample("matmul", [randn(3, 4), randn(4, 5, seed=1)], second_order=True),
    Sample("matmul", [randn(2, 3, 4), randn(4, 5, seed=1)], label="batched-bcast"),
    Sample("matmul", [randn(2, 3, 2, 4), randn(4, 5, seed=1)], second_order=True,
           label="shared-weight"),
    Sample("matmul", [randn(2, 1, 3, 4), randn(3, 4, 2, seed=1)], label="batch-bcast"),
    Sample("matmul", [randn(4), randn(4, 5, seed=1)], label="vec-mat"),
    Sample("matmul", [randn(3, 4), randn(4, seed=1)], label="mat-vec"),
    Sample("gemm", [randn(3, 4), randn(4, 5, seed=1), randn(5, seed=2)], second_order=True),
    Sample("gemm", [randn(4, 3), randn(5, 4, seed=1), randn(3, 5, seed=2)],
           {"transA": 1, "transB": 1, "alpha": 0.5, "beta": 2.0}, label="trans"),
    Sample("gemm", [randn(4, 3), randn(4, 5, seed=1)], {"transA": 1}, label="noC"),
    Sample("gemm", [randn(3, 4), randn(5, 4, seed=1), randn(1, 1, seed=2)], {"transB": 1},
           label="scalarC"),
    Sample("gemm", [randn(3, 4), randn(4, 5, seed=1), randn(5, seed=2)],
           {"activation": "relu"}, label="relu"),
    Sample("gemm", [randn(4, 3), randn(4, 5, seed=1), randn(5, seed=2)],
           {"activation": "sigmoid", "transA": 1}, second_order=True, label="sigmoid"),
    Sample("gemm", [randn(3, 4), randn(4, 5, seed=1)], {"activation": "tanh", "alpha": 0.5},
           second_order=True, label="tanh"),
]
