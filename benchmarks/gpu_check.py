"""The CUDA execution provider check: 50 training steps of the digits MLP and CNN with
``provider="cuda"`` (parameters and optimiser state kept on the GPU between steps by IO binding)
and with the CPU provider, from the same start on the same batches. Prints the largest
loss-curve difference and the steps per second of each provider.

Needs the ``onnxruntime-gpu`` wheel in place of ``onnxruntime`` (``pip uninstall onnxruntime``
then ``pip install onnxruntime-gpu``); without a CUDA provider it says so and checks CPU only.

    python benchmarks/gpu_check.py [--steps 50]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from bench_train_step import BATCH, _data, cnn_step, mlp_step

from graphdl.training.step_runner import OrtRunner


def curve(step, x, y, provider: str, steps: int) -> tuple[list[float], float]:
    runner, hp, losses = OrtRunner(step, provider=provider), step.hyperparam_feeds(), []
    t0 = time.perf_counter()
    for i in range(steps):
        s = (i * BATCH) % (len(x) - BATCH)
        losses.append(runner({"x": x[s:s + BATCH], "y": y[s:s + BATCH]}, hp)["loss"])
    return losses, steps / (time.perf_counter() - t0)


def main() -> None:
    import onnxruntime as ort

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    if hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # the CUDA and cuDNN libraries of an installed torch, if any
    has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if not has_cuda:
        print("CUDAExecutionProvider is not available: install onnxruntime-gpu; CPU only")
    for name, make in (("mlp", mlp_step), ("cnn", cnn_step)):
        step = make()
        x, y = _data(1024, image=name == "cnn")
        cpu, cpu_rate = curve(step, x, y, "cpu", args.steps)
        if not has_cuda:
            print(f"model={name} cpu_steps_per_s={cpu_rate:.0f} cuda=unavailable")
            continue
        gpu, gpu_rate = curve(step, x, y, "cuda", args.steps)
        diff = float(np.max(np.abs(np.asarray(gpu) - np.asarray(cpu))))
        print(f"model={name} steps={args.steps} max_loss_diff={diff:.2e} "
              f"cpu_steps_per_s={cpu_rate:.0f} cuda_steps_per_s={gpu_rate:.0f}")


if __name__ == "__main__":
    main()
