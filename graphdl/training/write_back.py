"""Trained weights back into the inference model (``graphdl export-trained``).

The training-step folder holds ``infer.onnx``, the model the step trains. Write-back edits
that ONNX file's initializers in place (protobuf level), so inputs, outputs, node names and
every untrained initializer stay bit-identical; trained parameters and running statistics take
their values from a state (``state.npz`` as ``graphdl train`` writes it, or any mapping), and
LoRA adapters are merged into the weights they adapt.
"""
from __future__ import annotations

import os
from typing import Mapping

import numpy as np

from ..core.errors import GraphError
from ..core.fileio import write_atomic
from .lora import merge
from .step import load_manifest

INFER = "infer.onnx"
STATE = "state.npz"


def load_state(path: str) -> dict[str, np.ndarray]:
    """The carried state from ``state.npz`` (a trainer checkpoint) or an init ``.npz``."""
    from .trainer import META, read_checkpoint

    if not os.path.isfile(path):
        raise GraphError(f"{path}: no such state file (train first with graphdl train, or "
                         "name one with --state)")
    with np.load(path) as z:
        plain = META not in z.files and "meta" not in z.files
        if plain:
            return {k: z[k] for k in z.files}
    return read_checkpoint(path)[1]


def trained_values(manifest: Mapping, state: Mapping[str, np.ndarray],
                   weights: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Initializer name -> new value: trained parameters and running statistics from
    ``state``, LoRA-adapted weights (original values in ``weights``) merged."""
    lora = manifest.get("lora", {})
    adapters = {e[k] for e in lora.values() for k in ("A", "B")}
    names = [e["input"] for e in manifest["state"]
             if e["kind"] in ("param", "running_stat") and e["input"] not in adapters]
    missing = [n for n in names + sorted(adapters) if n not in state]
    if missing:
        raise GraphError(f"the state lacks trained values {missing}")
    out = {n: np.asarray(state[n]) for n in names}
    out.update(merge(lora, weights, state))
    return out


def export_trained(folder: str, output: str, state: Mapping[str, np.ndarray] | str | None = None
                   ) -> dict[str, np.ndarray]:
    """Writes ``folder``'s inference model with trained values to ``output``; ``state`` is a
    mapping or an ``.npz`` path (default ``folder/state.npz``). Returns the replaced values."""
    import onnx
    from onnx import numpy_helper

    manifest = load_manifest(os.path.join(folder, "train_step.json"))
    if state is None or isinstance(state, str):
        state = load_state(state or os.path.join(folder, STATE))
    model = onnx.load(os.path.join(folder, INFER))
    inits = {t.name: t for t in model.graph.initializer}
    weights = {w: numpy_helper.to_array(inits[w]) for w in manifest.get("lora", {})
               if w in inits}
    values = trained_values(manifest, state, weights)
    absent = [n for n in values if n not in inits]
    if absent:
        raise GraphError(f"{INFER} has no initializers {absent}; was the step built from it?")
    for name, arr in values.items():
        old = inits[name]
        want = numpy_helper.to_array(old)
        if want.shape != arr.shape:
            raise GraphError(f"trained {name!r} has shape {arr.shape}, the model's {want.shape}")
        old.CopyFrom(numpy_helper.from_array(arr.astype(want.dtype), name))
    write_atomic(output, model.SerializeToString())
    return values
