"""A transformer encoder classifier as a realistic training-step benchmark, trained the way a
graphdl user fine-tunes a PyTorch model: the model is exported by ``torch.onnx.export``,
imported by graphdl, given a cross-entropy loss on its ``logits`` and an Adam step
(``passes.training_step(..., attach="cross_entropy")``), and timed against the same module
trained by PyTorch eager from the same weights.

The model: tokens of 32 features (T = 32 per sequence, batch 32) -> linear embedding to 128 ->
2 post-norm ``nn.TransformerEncoderLayer`` (4 heads, feed-forward 512, GELU, no dropout) ->
mean over the tokens -> linear 10. Every parameter gets its own random perturbation before the
export, because the TorchScript exporter merges equal initializers: ``nn.TransformerEncoder``
deep-copies one layer (its layers start identical), the norms' weights are all ones and the
attention's biases zeros, and each would otherwise be one parameter in graphdl and several in
torch.

:func:`transformer_case` follows ``benchmarks/bench_realistic.py``'s contract: contender ->
zero-argument step returning the loss.
"""
from __future__ import annotations

import io
import warnings
from typing import Callable

import numpy as np

T, FEATURES, D, HEADS, FF, LAYERS, CLASSES, BATCH = 32, 32, 128, 4, 512, 2, 10, 32
LR = 1e-3


def _module(quick: bool):
    import torch

    d, ff, layers = (16, 32, 1) if quick else (D, FF, LAYERS)

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = torch.nn.Linear(FEATURES, d)
            layer = torch.nn.TransformerEncoderLayer(d, HEADS, ff, dropout=0.0,
                                                     activation="gelu", batch_first=True)
            self.encoder = torch.nn.TransformerEncoder(layer, layers,
                                                       enable_nested_tensor=False)
            self.head = torch.nn.Linear(d, CLASSES)

        def forward(self, x):
            return self.head(self.encoder(self.emb(x)).mean(1))

    torch.manual_seed(0)
    model = Encoder()
    with torch.no_grad():
        for p in model.parameters():  # distinct values: see the module docstring
            p.add_(0.05 * torch.randn_like(p))
    return model


def _graphdl_step(model):
    import torch

    import graphdl as gd
    import onnx
    import passes
    from graphdl import optim

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (torch.randn(2, T, FEATURES),), buf, opset_version=17,
                          dynamo=False, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "N"}})
    fwd = gd.from_onnx(onnx.load_from_string(buf.getvalue()))
    return passes.training_step(fwd, optim.Adam(lr=LR), attach="cross_entropy",
                                logits="logits", labels="labels")


def transformer_case(threads: int, quick: bool = False) -> dict[str, Callable[[], float]]:
    """Contender -> one training step per call returning the loss: ``ort`` and
    ``interpreter`` on graphdl's step of the imported export, ``torch`` on the module."""
    import torch

    from benchmarks.bench_realistic import _graphdl_steppers
    from benchmarks.realistic_models import torch_stepper

    model = _module(quick)
    step = _graphdl_step(model)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, T, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, BATCH).astype(np.int64)
    fns = _graphdl_steppers(step, {"x": x, "labels": y}, threads)
    fns["torch"] = torch_stepper(model.train(), dict(model.named_parameters()),
                                 lambda p: torch.optim.Adam(p, lr=LR), x, y)
    return fns
