"""Writes what examples/node/train_digits.mjs trains from, with graphdl and scikit-learn:

- the digits MLP's (or, with ``--model cnn``, examples/cnn_digits.py's CNN's) Adam training
  step, saved by graphdl (train_step.onnx, train_step.json with the initial state listed under
  ``initial_state``, train_step.init.bin) and infer.onnx, at the portable default opset;
- the digits train/test split as raw little-endian arrays (digits.bin, listed in digits.json);
- the batch order of every epoch (int32, in digits.bin too), so that any engine training from
  these files sees the same batches and gives the same loss curve.

    python examples/node/prepare_digits.py DIR [--model mlp|cnn] [--epochs N]
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import cnn_digits  # noqa: E402
from train_in_onnxruntime import SEED, export  # noqa: E402

import passes  # noqa: E402
from graphdl import optim, to_onnx  # noqa: E402
from graphdl.core.fileio import write_atomic  # noqa: E402
from graphdl.training.minibatch import params_as_inputs  # noqa: E402
from graphdl.training.step import raw_arrays  # noqa: E402

EPOCHS, BATCH, LR, DECAY = 20, 32, 0.002, 0.85


def export_cnn(out: str) -> None:
    """The CNN's Adam training step and its inference model, as ``export`` does the MLP's."""
    train, infer = cnn_digits.build(cnn_digits.net())
    passes.training_step(train, optim.Adam(lr=LR)).save(out)
    infer, _ = params_as_inputs(infer)
    write_atomic(os.path.join(out, "infer.onnx"), to_onnx(infer).SerializeToString())


def write_data(out: str, epochs: int = EPOCHS, model: str = "mlp") -> dict:
    """digits.bin and digits.json: x/y train and test (x as [N, 1, 8, 8] images for the CNN),
    every epoch's batch order, the learning-rate schedule."""
    x, y = load_digits(return_X_y=True)
    x = x.reshape(-1, 1, 8, 8) if model == "cnn" else x
    x_tr, x_te, y_tr, y_te = train_test_split((x / 16).astype(np.float32), y.astype(np.int64),
                                              test_size=0.2, random_state=SEED, stratify=y)
    rng = np.random.default_rng(SEED)
    order = np.stack([rng.permutation(len(x_tr)) for _ in range(epochs)]).astype(np.int32)
    raw, entries = raw_arrays({"x_train": x_tr, "y_train": y_tr, "x_test": x_te,
                               "y_test": y_te, "order": order})
    meta = {"file": "digits.bin", "tensors": entries, "epochs": epochs, "batch_size": BATCH,
            "lr": LR, "lr_decay": DECAY}
    write_atomic(os.path.join(out, "digits.bin"), raw)
    write_atomic(os.path.join(out, "digits.json"), json.dumps(meta, indent=1).encode())
    return meta


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the folder to write")
    ap.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    args = ap.parse_args()
    (export_cnn if args.model == "cnn" else export)(args.out)
    write_data(args.out, args.epochs, args.model)
    print(f"wrote {args.out}: train_step.onnx, train_step.json, train_step.init.bin, "
          f"infer.onnx, digits.bin, digits.json")


if __name__ == "__main__":
    main()
