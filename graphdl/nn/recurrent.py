"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU``.

A layer reads a batch of sequences x [N, T, I] (batch-major, T static) and returns every
hidden state [N, T, H] (``return_sequences=True``) or the last one [N, H]. Its parameters are
stored in ONNX's layout, which the ops take (see graphdl/ops/recurrent.py for which blocks are
the gate weights W_*, U_*, b_*): "W" [1, G*H, I], "R" [1, G*H, H], "B" [1, 2*G*H]. Initial
values are U(-1/sqrt(H), 1/sqrt(H)), as PyTorch draws them.

PyTorch stores the same numbers in another order; :func:`onnx_weights_from_torch` converts:

- ``weight_ih_l0`` [G*H, I] -> W[0], ``weight_hh_l0`` -> R[0], ``[bias_ih_l0 | bias_hh_l0]``
  -> B[0], with the gate blocks (H rows each) permuted:
- LSTM: PyTorch i, f, g, o -> ONNX i, o, f, c (g is the candidate cell c~);
- GRU: PyTorch r, z, n -> ONNX z, r, h; PyTorch's GRU is ``linear_before_reset=1``
  (``n = tanh(W_n x + b_in + r * (U_n h + b_hn))``), the original GRU's is 0;
- RNN: one block, no permutation.

The permutation is linear, so gradients convert the same way.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ..core.builder import Tensor, user_location
from ..core.errors import ShapeError
from ..ops.recurrent import GATES, RNN_ACTIVATIONS, gru, lstm, rnn
from ..ops.shape import squeeze, unsqueeze
from ..core.types import dims_equal, shape_str
from .layer import Layer, Seed, param_dtype

#: for each kind, the PyTorch gate block that goes to each ONNX gate position
TORCH_TO_ONNX_GATES = {"rnn": (0,), "lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}


def onnx_weights_from_torch(kind: str, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray,
                            b_hh: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PyTorch's one-direction weights (or their gradients) -> ONNX's W, R, B [1, ...]."""
    order = TORCH_TO_ONNX_GATES[kind]
    hidden = w_hh.shape[1]

    def permute(a: np.ndarray) -> np.ndarray:
        return np.concatenate([a[g * hidden:(g + 1) * hidden] for g in order], axis=0)

    bias = np.concatenate([permute(b_ih), permute(b_hh)])
    return permute(w_ih)[None], permute(w_hh)[None], bias[None]


class _Recurrent(Layer):
    """What the three layers share: sizes, parameters, the call with optional initial state."""

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = False,
                 name: str | None = None, seed: Seed = None):
        super().__init__(name, seed)
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.return_sequences = return_sequences

    def init_params(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        gh, n_in = GATES[self.kind] * self.hidden_size, self.input_size
        a = 1.0 / np.sqrt(self.hidden_size)
        return {"W": rng.uniform(-a, a, (1, gh, n_in)),
                "R": rng.uniform(-a, a, (1, gh, self.hidden_size)),
                "B": rng.uniform(-a, a, (1, 2 * gh))}

    def __call__(self, x: Tensor, *state: Tensor) -> Tensor:
        """``x`` [N, T, I]; optional initial state(s) [N, H] (h, and c for the LSTM)."""
        self._check(x)
        return self.forward(x, self.params_in(x.b, param_dtype(x)), *state)

    def forward(self, x: Tensor, p: dict[str, Tensor], *state: Tensor) -> Tensor:
        outs = self.apply(x, p, [unsqueeze(s, (1,)) for s in state])  # [N, D=1, H]
        if self.return_sequences:
            return squeeze(outs[0], (2,))  # Y [N, T, 1, H] -> [N, T, H]
        return squeeze(outs[1], (1,))  # Y_h [N, 1, H] -> [N, H]

    def apply(self, x: Tensor, p: dict[str, Tensor], states: Sequence) -> list[Tensor]:
        raise NotImplementedError

    def _check(self, x: Tensor) -> None:
        if x.shape is not None and (len(x.shape) != 3 or
                                    dims_equal(x.shape[2], self.input_size) is False):
            loc = user_location()
            raise ShapeError(f"{self.kind}: expects inputs [N, T, {self.input_size}], got "
                             f"{shape_str(x.shape)}" + (f" at {loc}" if loc else ""))


class RNN(_Recurrent):
    """The vanilla RNN ``h(i) = act(W_hh h(i-1) + W_hx x(i) + b_h)`` (act: tanh, relu or
    sigmoid). The textbook output ``y(i) = act_y(W_yh h(i) + b_y)`` is a Dense layer on the
    returned states."""

    kind = "rnn"

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = False,
                 activation: str = "tanh", name: str | None = None, seed: Seed = None):
        super().__init__(input_size, hidden_size, return_sequences, name, seed)
        if activation not in RNN_ACTIVATIONS:
            raise ValueError(f"unknown RNN activation {activation!r}; expected one of "
                             f"{sorted(RNN_ACTIVATIONS)}")
        self.activation = activation

    def apply(self, x: Tensor, p: dict[str, Tensor], states: Sequence) -> list[Tensor]:
        return rnn(x, p["W"], p["R"], p["B"], *states, activation=self.activation, layout=1)


class LSTM(_Recurrent):
    """The LSTM (forget, input, output gates, candidate cell); call it with
    optional initial ``h`` and ``c``."""

    kind = "lstm"

    def apply(self, x: Tensor, p: dict[str, Tensor], states: Sequence) -> list[Tensor]:
        return lstm(x, p["W"], p["R"], p["B"], *states, layout=1)


class GRU(_Recurrent):
    """The GRU ``h(t) = (1 - z) * h~ + z * h(t-1)``; ``linear_before_reset=1`` gives PyTorch's
    candidate ``tanh(W x + b + r * (U h + b'))`` instead of the original GRU's ``U (r * h)``."""

    kind = "gru"

    def __init__(self, input_size: int, hidden_size: int, return_sequences: bool = False,
                 linear_before_reset: int = 0, name: str | None = None, seed: Seed = None):
        super().__init__(input_size, hidden_size, return_sequences, name, seed)
        self.linear_before_reset = int(linear_before_reset)

    def apply(self, x: Tensor, p: dict[str, Tensor], states: Sequence) -> list[Tensor]:
        return gru(x, p["W"], p["R"], p["B"], *states,
                   linear_before_reset=self.linear_before_reset, layout=1)
