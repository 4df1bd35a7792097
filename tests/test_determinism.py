"""Determinism: the interpreter gives bit-identical results across runs of one plan, across fresh
plans, and across fresh processes with different hash seeds (so nothing depends on set or dict
iteration order, object ids or buffer reuse), for forward graphs of every model family and for
their gradient graphs."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl.engine.interpreter import Plan

ROOT = Path(__file__).resolve().parent.parent


def _mlp() -> tuple[gd.Graph, dict]:
    b = gd.GraphBuilder("mlp")
    x = b.input("x", ["N", 20])
    y = gd.nn.MLP([20, 64, 64, 10], activation="tanh", seed=1)(x)
    loss = gd.reduce_mean(gd.log_softmax(y, 1) * -1.0, keepdims=False)
    return b.build({"y": y, "loss": loss}), {"x": _rand((33, 20), 0)}


def _cnn() -> tuple[gd.Graph, dict]:
    b = gd.GraphBuilder("cnn")
    x = b.input("x", ["N", 1, 8, 8])
    h = gd.nn.Conv2d(1, 4, 3, padding=1, activation="relu", seed=2)(x)
    h = gd.flatten(gd.nn.MaxPool2d(2)(h), 1)
    y = gd.nn.Dense(64, 5, seed=3)(h)
    return b.build({"y": y, "loss": gd.reduce_sum(y * y, keepdims=False)}), \
        {"x": _rand((6, 1, 8, 8), 1)}


def _lstm() -> tuple[gd.Graph, dict]:
    b = gd.GraphBuilder("lstm")
    x = b.input("x", ["N", 7, 3])
    h = gd.nn.LSTM(3, 8, seed=4)(x)
    return b.build({"h": h, "loss": gd.reduce_sum(h, keepdims=False)}), \
        {"x": _rand((5, 7, 3), 2)}


def _rand(shape: tuple, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


MODELS = {"mlp": _mlp, "cnn": _cnn, "lstm": _lstm}


def _graphs(name: str) -> list[tuple[str, gd.Graph, dict]]:
    """The forward graph and its gradient graph w.r.t. every parameter."""
    g, feeds = MODELS[name]()
    wrt = [v.name for v in g.initializers]
    return [(name, g, feeds), (name + "_grad", passes.grad(g, "loss", wrt), feeds)]


def digest(outs: dict[str, np.ndarray]) -> str:
    """A hash of the outputs' names, dtypes, shapes and bytes."""
    h = hashlib.sha256()
    for k in sorted(outs):
        a = np.ascontiguousarray(outs[k])
        h.update(f"{k}:{a.dtype}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def all_digests() -> dict[str, str]:
    return {label: digest(gd.run(g, feeds)) for name in MODELS
            for label, g, feeds in _graphs(name)}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_same_plan_and_fresh_plans_are_bit_identical(name):
    for label, g, feeds in _graphs(name):
        plan = Plan(g)
        first = plan(feeds)
        assert all(np.all(np.isfinite(v)) for v in first.values()), label
        for run in range(3):
            again = plan(feeds)
            assert digest(again) == digest(first), f"{label}: run {run} of one plan differs"
        rebuilt, _ = MODELS[name]()  # a new graph object, new ids, a new plan
        if label == name:
            assert digest(Plan(rebuilt)(feeds)) == digest(first), f"{label}: rebuilt differs"


def test_fresh_processes_with_different_hash_seeds_are_bit_identical():
    here = all_digests()
    code = ("import json; from tests.test_determinism import all_digests; "
            "print(json.dumps(all_digests()))")
    for seed in ("1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120, check=True)
        import json

        assert json.loads(out.stdout.strip().splitlines()[-1]) == here, f"hash seed {seed}"
