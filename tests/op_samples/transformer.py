"""Sample rows: erf, sin, cos, GELU, hard sigmoid/swish, layer and RMS normalisation."""
import numpy as np

from . import Sample, away_from_zero, randn


def _away_from(x, points, margin=0.05):
    """x moved off the kinks at ``points`` (finite differences are meaningless there)."""
    for p in points:
        close = abs(x - p) < margin
        x = x + close * 2 * margin
    return x


SAMPLES = [
    Sample("erf", [randn(3, 4)], ort="f32", second_order=True),  # no float64 Erf in onnxruntime
    Sample("sin", [randn(3, 4)], second_order=True),
    Sample("cos", [randn(3, 4)], second_order=True),
    Sample("gelu", [randn(3, 4) * 2], ort="f32", second_order=True),
    Sample("gelu", [randn(3, 4) * 2], {"approximate": "tanh"}, second_order=True, label="tanh"),
    Sample("gelu", [randn(3, 4) * 2], {"approximate": "tanh"}, ort="f32", label="tanh-f32"),
    Sample("hard_sigmoid", [_away_from(randn(3, 4) * 4, (-2.5, 2.5))]),
    Sample("hard_sigmoid", [_away_from(randn(3, 4) * 4, (-2.5, 2.5))], ort="f32",
           label="f32"),
    Sample("hard_sigmoid", [_away_from(randn(3, 4) * 4, (-1.0, 2.0))],
           {"alpha": 0.5, "beta": 0.5}, label="alpha-beta"),
    Sample("hard_swish", [_away_from(randn(3, 4) * 4, (-3.0, 3.0))], min_opset=14),
    Sample("hard_swish", [_away_from(randn(3, 4) * 4, (-3.0, 3.0))], ort="f32", label="f32",
           min_opset=14),
    Sample("layer_norm", [randn(3, 5), randn(5, seed=1), randn(5, seed=2)], second_order=True),
    Sample("layer_norm", [randn(2, 3, 4), randn(3, 4, seed=1)], {"axis": 1, "eps": 1e-3},
           label="axis1-nobias"),
    Sample("layer_norm", [randn(2, 3, 4), randn(4, seed=1), randn(4, seed=2)], ort="f32",
           label="f32"),
    Sample("rms_norm", [randn(3, 5), randn(5, seed=1)], second_order=True),
    Sample("rms_norm", [randn(2, 3, 4), randn(3, 4, seed=1)], {"axis": 1, "eps": 1e-3},
           label="axis1"),
    Sample("hard_swish", [away_from_zero(2, 2) * 0.5], label="small", min_opset=14),
]


def _qkv(b=2, hq=2, hk=2, sq=3, skv=4, d=4, dv=3, seed=10):
    return [randn(b, hq, sq, d, seed=seed), randn(b, hk, skv, d, seed=seed + 1),
            randn(b, hk, skv, dv, seed=seed + 2)]


_BOOL_MASK = np.array([[True, True, False, True], [False, True, True, True],
                       [True, False, False, False]])
_DEAD_ROW = np.array([[True, True, False, True], [False, False, False, False],
                      [True, False, True, False]])

SAMPLES += [
    Sample("attention", _qkv(), second_order=True),
    Sample("attention", _qkv(hq=4, hk=2), {"scale": 0.3}, label="gqa-scale"),
    Sample("attention", _qkv() + [_BOOL_MASK], label="bool-mask"),
    Sample("attention", _qkv() + [_DEAD_ROW], {"qk_mode": 3}, label="dead-row-probs"),
    Sample("attention", _qkv() + [randn(2, 1, 3, 4, seed=5)], {"qk_mode": 2},
           label="additive-mask"),
    Sample("attention", _qkv(sq=4), {"is_causal": True}, label="causal"),
    Sample("attention", _qkv(sq=2), {"is_causal": True, "causal_offset": 2, "softcap": 2.0},
           label="causal-offset-softcap"),
]
