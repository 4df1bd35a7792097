"""Sample rows: the recurrent composites rnn, lstm, gru (graphdl/ops/recurrent.py), over both
layouts, every direction, absent and given initial states, peepholes and both GRU reset forms;
and lstm_scan (graphdl/ops/lstm_scan.py), the LSTM's recurrence with its BPTT rule, whose rows
weight every output, the saved gate values too (so its second-order rule is checked).
onnxruntime's RNN/LSTM/GRU kernels are float32 only, hence ort="f32"."""
from __future__ import annotations

from . import Sample, randn

T, N, I, H = 3, 2, 3, 2


def _weights(gates: int, dirs: int = 1, seed: int = 0) -> list:
    """W, R (scaled so the gates do not saturate) and B for ``gates`` gates."""
    return [0.6 * randn(dirs, gates * H, I, seed=seed),
            0.6 * randn(dirs, gates * H, H, seed=seed + 1),
            0.5 * randn(dirs, 2 * gates * H, seed=seed + 2)]


def _x(layout: int = 0, seed: int = 9):
    return randn(N, T, I, seed=seed) if layout else randn(T, N, I, seed=seed)


def _state(dirs: int = 1, layout: int = 0, seed: int = 7):
    return randn(N, dirs, H, seed=seed) if layout else randn(dirs, N, H, seed=seed)


SAMPLES = [
    Sample("rnn", [_x(), *_weights(1), _state()], second_order=True, ort="f32"),
    Sample("rnn", [_x(1), *_weights(1, 2)], {"direction": "bidirectional", "layout": 1},
           ort="f32", label="bidirectional-batch-major"),
    Sample("rnn", [_x(), *_weights(1)[:2]], {"activation": "relu", "direction": "reverse"},
           ort="f32", label="relu-reverse"),
    Sample("lstm", [_x(), *_weights(4), _state(), _state(seed=8), randn(1, 3 * H, seed=5)],
           second_order=True, ort="f32", label="peepholes-initial-state"),
    Sample("lstm", [_x(1), *_weights(4, 2)], {"direction": "bidirectional", "layout": 1},
           ort="f32", label="bidirectional-batch-major"),
    Sample("lstm", [randn(1, N, I, seed=4), *_weights(4)], ort="f32", label="one-step"),
    Sample("gru", [_x(), *_weights(3), _state()], second_order=True, ort="f32"),
    Sample("gru", [_x(), *_weights(3), _state()], {"linear_before_reset": 1}, second_order=True,
           ort="f32", label="linear-before-reset"),
    Sample("gru", [_x(1), *_weights(3, 2)], {"direction": "bidirectional", "layout": 1,
                                             "linear_before_reset": 1},
           ort="f32", label="bidirectional-batch-major-lbr"),
    Sample("lstm_scan", [0.8 * randn(T, N, I, seed=3), 0.6 * randn(4 * H, I, seed=4),
                         0.6 * randn(4 * H, H, seed=5), 0.5 * randn(4 * H, seed=6),
                         randn(N, H, seed=7), randn(N, H, seed=8)],
           second_order=True, label="bias-initial-state"),
    Sample("lstm_scan", [0.8 * randn(T, N, I, seed=9), 0.6 * randn(4 * H, I, seed=10),
                         0.6 * randn(4 * H, H, seed=11)],
           {"reverse": 1}, second_order=True, label="reverse-zero-state"),
    Sample("lstm_scan", [0.8 * randn(1, N, I, seed=12), 0.6 * randn(4 * H, I, seed=13),
                         0.6 * randn(4 * H, H, seed=14), None, randn(N, H, seed=15)],
           label="one-step-h0-only"),
]
