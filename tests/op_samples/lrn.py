"""Sample rows: lrn (lrn.py). onnxruntime has LRN for float32 and odd sizes on 4-D inputs only;
the even size is checked against the definition in tests/test_onnx_backend_nodes.py."""
from . import Sample, randn

SAMPLES = [
    Sample("lrn", [randn(2, 5, 3, 3)], {"size": 3}, second_order=True, ort="f32", rtol=1e-5,
           atol=1e-6),
    Sample("lrn", [randn(1, 6, 4, 2)], {"size": 4, "alpha": 0.1, "beta": 0.6, "bias": 2.0},
           second_order=True, ort=False, label="even-size"),
    Sample("lrn", [randn(2, 3, 5, 1)], {"size": 5, "alpha": 0.02}, ort="f32", rtol=1e-5,
           atol=1e-6, label="wider-than-channels"),
    Sample("lrn", [randn(2, 4, 1, 3)], {"size": 1, "alpha": 0.5}, ort="f32", rtol=1e-5,
           atol=1e-6, label="size1"),
    Sample("lrn", [randn(2, 3, 4, 2)], {"size": 2 ** 40 + 1, "alpha": 0.3}, ort="f32",
           rtol=1e-5, atol=1e-6, label="window-past-every-channel"),
]
