"""Runs graphdl's exported files in whatever onnxruntime the Python running it has; needs only
NumPy and onnxruntime (no graphdl), so a second environment with another onnxruntime (1.31, the
newest onnxruntime-gpu's version, as a stand-in for that build) can run it:

    python tests/ort_runtime_check.py DIR OUT.json [--epochs N]

DIR holds ``*.onnx`` models, each with ``NAME.feeds.npz``, and may hold training folders
``train*/`` made by examples/node/prepare_digits.py. OUT.json gets the onnxruntime version,
every model's outputs (as nested lists, by name) and each training run's per-step losses and
test accuracy.
"""
from __future__ import annotations

import glob
import json
import os
import sys

import numpy as np
import onnxruntime as ort


def session(path: str) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def read_raw(path: str, entries: list) -> dict:
    """The raw little-endian arrays a manifest lists (see docs/training-step-format.md)."""
    buf = open(path, "rb").read()
    return {e["name"]: np.frombuffer(buf, np.dtype(e["dtype"]).newbyteorder("<"),
                                     int(np.prod(e["shape"], dtype=np.int64)),
                                     e["offset"]).reshape(e["shape"]) for e in entries}


def train(folder: str, epochs: int | None = None) -> tuple[list[float], float]:
    """The loop of examples/node/train_digits.mjs, in Python: the same files, batches and
    learning-rate schedule, so the per-step losses are comparable across runtimes. Returns
    the losses and the trained model's test accuracy (infer.onnx)."""
    manifest = json.load(open(os.path.join(folder, "train_step.json")))
    meta = json.load(open(os.path.join(folder, "digits.json")))
    init = manifest["initial_state"]
    state = read_raw(os.path.join(folder, init["file"]), init["tensors"])
    data = read_raw(os.path.join(folder, meta["file"]), meta["tensors"])
    dtype = np.dtype(manifest["dtype"])
    hp = {k: np.asarray(v, dtype) for k, v in manifest["hyperparams"].items()}
    step = session(os.path.join(folder, "train_step.onnx"))
    x_name, y_name = (b["name"] for b in manifest["batch_inputs"])
    outputs = [manifest["loss"], *manifest["next_step"]]
    losses = []
    for epoch in range(1, (epochs or meta["epochs"]) + 1):
        hp["lr"] = np.asarray(meta["lr"] * meta["lr_decay"] ** (epoch - 1), dtype)
        order = data["order"][epoch - 1]
        for i in range(0, len(order), meta["batch_size"]):
            idx = order[i:i + meta["batch_size"]]
            feeds = {x_name: data["x_train"][idx], y_name: data["y_train"][idx], **state, **hp}
            res = step.run(outputs, feeds)
            losses.append(float(res[0]))
            state = {manifest["next_step"][o]: v for o, v in zip(outputs[1:], res[1:])}
    params = {e["input"]: state[e["input"]] for e in manifest["state"] if e["kind"] == "param"}
    (logits,) = session(os.path.join(folder, "infer.onnx")).run(
        ["logits"], {"x": data["x_test"], **params})
    return losses, float(np.mean(np.argmax(logits, axis=1) == data["y_test"]))


def run_models(folder: str) -> dict:
    """Every ``NAME.onnx`` of ``folder`` on its ``NAME.feeds.npz``: outputs by name."""
    out = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.onnx"))):
        sess = session(path)
        with np.load(path[:-len(".onnx")] + ".feeds.npz") as z:
            feeds = {k: z[k] for k in z.files}
        names = [o.name for o in sess.get_outputs()]
        out[os.path.basename(path)] = {n: np.asarray(v).tolist()
                                       for n, v in zip(names, sess.run(names, feeds))}
    return out


def main(argv: list[str]) -> None:
    folder, out_path = argv[0], argv[1]
    epochs = int(argv[argv.index("--epochs") + 1]) if "--epochs" in argv else None
    result = {"onnxruntime": ort.__version__, "models": run_models(folder)}
    result["runs"] = {}
    for path in sorted(glob.glob(os.path.join(folder, "train*", "train_step.json"))):
        name = os.path.basename(os.path.dirname(path))
        losses, accuracy = train(os.path.dirname(path), epochs)
        result["runs"][name] = {"losses": losses, "accuracy": accuracy}
    with open(out_path, "w") as f:
        json.dump(result, f)
    print(f"onnxruntime {ort.__version__}: ran {len(result['models'])} models and "
          f"{len(result['runs'])} training runs")


if __name__ == "__main__":
    main(sys.argv[1:])
