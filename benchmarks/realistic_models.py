"""The realistic-size models of issue 14 built twice from the same initial weights: as a graphdl
training step (forward, backprop, optimiser update) and as the same step in PyTorch eager.

- MLP 784-512-512-10, ReLU, softmax cross-entropy, Adam (lr 1e-3), batch 128;
- CIFAR ResNet: 3x32x32, conv3x3(16)+BN+ReLU, 3 stages x 2 basic blocks of 16/32/64 channels
  (stride 2 at the first block of stages 2-3, whose shortcut is a 1x1 conv + BN), global
  average pool, linear 10; batch norm in training mode; SGD momentum 0.9 (lr 0.1), batch 32.

Convs have no bias (batch norm follows each), as in the usual CIFAR ResNet. ``sizes`` shrink
the ResNet for tests (channels per stage, image side, blocks per stage).
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

import graphdl as gd
import passes
from graphdl import optim
from graphdl.nn import MLP
from graphdl.ops.conv import conv
from graphdl.ops.normalization import batch_norm_train
from graphdl.ops.pool import global_avg_pool

MLP_SIZES, MLP_BATCH = (784, 512, 512, 10), 128
RESNET_CHANNELS, RESNET_SIDE, RESNET_BLOCKS, RESNET_BATCH = (16, 32, 64), 32, 2, 32
BN_MOMENTUM, BN_EPS = 0.1, 1e-5


def mlp_step(sizes: Sequence[int] = MLP_SIZES, dtype: str = "float32"):
    b = gd.GraphBuilder("mlp")
    x, y = b.input("x", ["N", sizes[0]], dtype), b.input("y", ["N"], "int64")
    fwd = b.build({"loss": gd.softmax_cross_entropy(MLP(sizes, "relu", seed=0)(x), y)})
    return passes.training_step(fwd, optim.Adam(lr=1e-3))


# -- ResNet: one list of layer specs, built by graphdl and by torch ------------------------------


def resnet_layout(channels: Sequence[int] = RESNET_CHANNELS, blocks: int = RESNET_BLOCKS
                  ) -> list[tuple]:
    """The network as specs: ("conv", name, c_in, c_out, k, stride), ("bn", name, c),
    ("relu",), ("block", [main specs], [shortcut specs]), ("pool",), ("fc", c_in, 10)."""
    def conv_bn(name, c_in, c_out, k, s):
        return [("conv", name, c_in, c_out, k, s), ("bn", name + "_bn", c_out)]

    layout = conv_bn("stem", 3, channels[0], 3, 1) + [("relu",)]
    c_in = channels[0]
    for i, c in enumerate(channels):
        for j in range(blocks):
            s = 2 if i > 0 and j == 0 else 1
            name = f"s{i}b{j}"
            main = conv_bn(name + "c1", c_in, c, 3, s) + [("relu",)] + \
                conv_bn(name + "c2", c, c, 3, 1)
            short = conv_bn(name + "sc", c_in, c, 1, s) if (s != 1 or c_in != c) else []
            layout.append(("block", main, short))
            c_in = c
    return layout + [("pool",), ("fc", c_in, 10)]


def resnet_params(layout: list, seed: int = 0) -> dict[str, np.ndarray]:
    """He-normal conv weights, unit gamma, zero beta, running stats 0 / 1, a small linear."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}

    def visit(specs):
        for s in specs:
            if s[0] == "conv":
                _, name, ci, co, k, _ = s
                out[name + ".W"] = rng.standard_normal((co, ci, k, k)) * np.sqrt(2 / (ci * k * k))
            elif s[0] == "bn":
                c = s[2]
                out.update({s[1] + ".gamma": 1 + 0.1 * rng.standard_normal(c),
                            s[1] + ".beta": 0.1 * rng.standard_normal(c),
                            s[1] + ".running_mean": np.zeros(c), s[1] + ".running_var": np.ones(c)})
            elif s[0] == "block":
                visit(s[1])
                visit(s[2])
            elif s[0] == "fc":
                out["fc.W"] = rng.standard_normal((s[1], s[2])) / np.sqrt(s[1])
                out["fc.b"] = np.zeros(s[2])
    visit(layout)
    return out


def _graphdl_apply(specs: list, h, p: dict):
    for s in specs:
        if s[0] == "conv":
            h = conv(h, p[s[1] + ".W"], strides=s[5], pads=s[4] // 2)
        elif s[0] == "bn":
            n = s[1]
            h, _, _ = batch_norm_train(h, p[n + ".gamma"], p[n + ".beta"], p[n + ".running_mean"],
                                       p[n + ".running_var"], BN_MOMENTUM, BN_EPS)
        elif s[0] == "relu":
            h = gd.relu(h)
        elif s[0] == "block":
            main = _graphdl_apply(s[1], h, p)
            h = gd.relu(main + (_graphdl_apply(s[2], h, p) if s[2] else h))
        elif s[0] == "pool":
            h = gd.flatten(global_avg_pool(h), 1)
        elif s[0] == "fc":
            h = h @ p["fc.W"] + p["fc.b"]
    return h


def resnet_forward(channels: Sequence[int] = RESNET_CHANNELS, side: int = RESNET_SIDE,
                   blocks: int = RESNET_BLOCKS, dtype: str = "float32", seed: int = 0):
    """The ResNet's forward graph: inputs x [N, 3, side, side], labels y; output ``loss``;
    the parameters and running statistics as initializers."""
    layout = resnet_layout(channels, blocks)
    b = gd.GraphBuilder("resnet")
    x, y = b.input("x", ["N", 3, side, side], dtype), b.input("y", ["N"], "int64")
    p = {k: b.param(k, v.astype(dtype)) for k, v in resnet_params(layout, seed).items()}
    return b.build({"loss": gd.softmax_cross_entropy(_graphdl_apply(layout, x, p), y)})


def resnet_step(channels: Sequence[int] = RESNET_CHANNELS, side: int = RESNET_SIDE,
                blocks: int = RESNET_BLOCKS, dtype: str = "float32", seed: int = 0):
    """The ResNet's training step (SGD, momentum 0.9, lr 0.1)."""
    fwd = resnet_forward(channels, side, blocks, dtype, seed)
    return passes.training_step(fwd, optim.SGD(lr=0.1, momentum=0.9))


def torch_resnet(layout: list, params: dict[str, np.ndarray]):
    """(forward(x) -> logits, {name: tensor}) in torch on copies of the layout's entries of
    ``params`` (other entries, such as optimiser state, are ignored); running statistics are
    buffers updated by F.batch_norm in training mode."""
    import torch
    import torch.nn.functional as F

    t = {k: torch.tensor(params[k], requires_grad=not k.endswith(("running_mean",
                                                                  "running_var")))
         for k in resnet_params(layout)}

    def apply(specs, h):
        for s in specs:
            if s[0] == "conv":
                h = F.conv2d(h, t[s[1] + ".W"], stride=s[5], padding=s[4] // 2)
            elif s[0] == "bn":
                n = s[1]
                h = F.batch_norm(h, t[n + ".running_mean"], t[n + ".running_var"],
                                 t[n + ".gamma"], t[n + ".beta"], True, BN_MOMENTUM, BN_EPS)
            elif s[0] == "relu":
                h = torch.relu(h)
            elif s[0] == "block":
                h = torch.relu(apply(s[1], h) + (apply(s[2], h) if s[2] else h))
            elif s[0] == "pool":
                h = h.mean((2, 3))
            elif s[0] == "fc":
                h = h @ t["fc.W"] + t["fc.b"]
        return h

    return (lambda x: apply(layout, x)), t


def torch_mlp(params: dict[str, np.ndarray]):
    """(forward(x) -> logits, {name: tensor}) of the ReLU MLP on copies of ``params``."""
    import torch

    t = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    n = len(t) // 2

    def forward(x):
        h = x
        for i in range(1, n + 1):
            h = h @ t[f"dense{i}.W"] + t[f"dense{i}.b"]
            if i < n:
                h = torch.relu(h)
        return h
    return forward, t


def torch_stepper(forward: Callable, tensors: dict, make_opt: Callable, x: np.ndarray,
                  y: np.ndarray) -> Callable[[], float]:
    """One eager step (forward, backward, update) per call on the batch; returns the loss."""
    import torch

    trainable = [v for v in tensors.values() if v.requires_grad]
    opt = make_opt(trainable)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def one() -> float:
        loss = torch.nn.functional.cross_entropy(forward(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return one
