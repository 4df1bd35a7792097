"""LRN against the ONNX definition written out here: the window of channel c runs from
max(0, c - floor((size - 1) / 2)) to min(C - 1, c + ceil((size - 1) / 2)), and the sum is
scaled by alpha / size. A size far past the channel count (a hostile model's) costs no more than
a window over every channel, in the interpreter and in onnxruntime on graphdl's export."""
import numpy as np
import pytest

import graphdl as gd


def definition(x: np.ndarray, size: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    out = np.empty_like(x, dtype=np.float64)
    channels = x.shape[1]
    for c in range(channels):
        lo = max(0, c - (size - 1) // 2)
        hi = min(channels - 1, c + -(-(size - 1) // 2))
        total = (x[:, lo:hi + 1].astype(np.float64) ** 2).sum(axis=1)
        out[:, c] = x[:, c] / (bias + alpha / size * total) ** beta
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 9, 2 ** 40 + 1, 2 ** 40])
@pytest.mark.parametrize("backend", ["numpy", "ort"])
def test_lrn_follows_the_onnx_definition(size, backend):
    x = np.random.default_rng(size % 7).standard_normal((2, 3, 4, 2)).astype(np.float32)
    b = gd.GraphBuilder("lrn")
    g = b.build({"y": gd.lrn(b.input("x", list(x.shape)), size, alpha=0.3, beta=0.7,
                             bias=1.5)})
    got = gd.run(g, {"x": x}, backend=backend)["y"]
    np.testing.assert_allclose(got, definition(x, size, 0.3, 0.7, 1.5), rtol=2e-6, atol=1e-6)
