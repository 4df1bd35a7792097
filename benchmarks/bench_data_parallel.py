"""Data-parallel scaling on this machine: training steps per second in 1 and 2 MPI processes
(one onnxruntime thread each, global batch 64), and the communication time per step, for the
digits CNN (examples/cnn_digits.py) and a CIFAR-style ResNet (ResNet-8: 3x32x32 input, three
stages of one basic block with 16/32/64 channels, batch norm; random images, since nothing is
downloaded: the speed does not depend on the pixels).

Each measurement is its own ``mpiexec -n R`` run (the distributed extra's mpiexec); 1 and 2
processes alternate round by round and the speed-up is the median of same-round ratios, so
a change in the machine's load between rounds tilts neither side. Wall time (the point is
two processes working at once). Per step it reports the all-reduce's time as the trainer saw
it (the transfer plus any wait for the slower rank) and the transfer alone (the same buffer
all-reduced in a loop after training), and the CPU time per step of rank 0's thread: on a
machine whose cores other work shares, wall-time speed-up is capped by the free cores, while the
CPU time per rank shows the work each rank does.

    python benchmarks/bench_data_parallel.py [--rounds 3] [--steps 12] [--models cnn,resnet]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import zlib

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "examples"))

BATCH = 64


def resnet_forward(b, x, seed: int = 0):
    """ResNet-8 for 32x32 RGB images: conv-BN-ReLU stem, three basic blocks (the 2nd and 3rd
    halve the resolution, with a 1x1 projection shortcut), global average pool, dense 10."""
    import graphdl as gd
    from graphdl import nn

    def conv_bn(h, cin, cout, k, stride, tag, relu=True):
        h = nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False,
                      name=f"{tag}.conv", seed=(seed, zlib.crc32(tag.encode()) % 1000))(h)
        h = nn.BatchNorm(cout, name=f"{tag}.bn")(h)
        return gd.relu(h) if relu else h

    h = conv_bn(x, 3, 16, 3, 1, "stem")
    cin = 16
    for i, cout in enumerate((16, 32, 64)):
        stride = 1 if i == 0 else 2
        y = conv_bn(h, cin, cout, 3, stride, f"block{i}.a")
        y = conv_bn(y, cout, cout, 3, 1, f"block{i}.b", relu=False)
        skip = h if stride == 1 and cin == cout else \
            conv_bn(h, cin, cout, 1, stride, f"block{i}.proj", relu=False)
        h, cin = gd.relu(y + skip), cout
    return nn.Dense(64, 10, name="head", seed=(seed, 99))(gd.flatten(gd.global_avg_pool(h), 1))


def build(model: str):
    """(training step, data) of ``model``: "cnn" (digits) or "resnet" (CIFAR-shaped)."""
    import graphdl as gd
    import passes
    from graphdl import optim

    if model == "cnn":
        from cnn_digits import load_data, net

        from graphdl.training.minibatch import classifier_graphs

        fwd, _ = classifier_graphs(net(0), ["N", 1, 8, 8], "cnn_digits")
        x_tr, _, y_tr, _ = load_data(0)
        data = {"x": x_tr, "y": y_tr}
    else:
        b = gd.GraphBuilder("cifar_resnet8")
        x, y = b.input("x", ["N", 3, 32, 32]), b.input("y", ["N"], "int64")
        fwd = b.build({"loss": gd.softmax_cross_entropy(resnet_forward(b, x), y)})
        rng = np.random.default_rng(0)
        data = {"x": rng.standard_normal((BATCH * 64, 3, 32, 32)).astype(np.float32),
                "y": rng.integers(0, 10, BATCH * 64)}
    return passes.training_step(fwd, optim.SGD(lr=0.05, momentum=0.9)), data


def worker(model: str, steps: int) -> None:
    """Under mpiexec: one warm-up epoch of ``steps`` steps, one timed; rank 0 prints JSON."""
    from graphdl.training.data_parallel import DataParallelTrainer
    from graphdl.training.distributed import world

    comm = world(timeout=120)
    step, data = build(model)
    data = {k: v[:steps * BATCH] for k, v in data.items()}
    t = DataParallelTrainer(step, comm, "ort", batch_size=BATCH, shuffle=False, verbose=False,
                            threads=1)
    t.fit(data, 1)
    comm_before, cpu = t.comm_seconds, time.thread_time()
    t.fit(data, 2)
    cpu = time.thread_time() - cpu  # onnxruntime at 1 thread computes on this thread
    seconds = t.history[-1]["seconds"]
    kinds = ("param", "running_stat")
    size = 1 + sum(int(np.size(step.initial[e["input"]])) for e in step.manifest["state"]
                   if e["kind"] in kinds)
    buf = np.zeros(size, step.dtype)
    comm.barrier()
    start = time.perf_counter()
    for _ in range(20):
        comm.allreduce(buf)
    transfer = (time.perf_counter() - start) / 20
    if comm.rank == 0:
        params = sum(int(np.size(v)) for v in step.params(step.initial).values())
        print(json.dumps({"model": model, "ranks": comm.size, "steps_per_s": steps / seconds,
                          "cpu_ms": 1e3 * cpu / steps,
                          "allreduce_ms": 1e3 * (t.comm_seconds - comm_before) / steps,
                          "transfer_ms": 1e3 * transfer if comm.size > 1 else 0.0,
                          "param_bytes": params * step.dtype.itemsize}), flush=True)


def launch(model: str, ranks: int, steps: int) -> dict:
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep +
                           os.environ.get("PATH", ""))
    if mpiexec is None:
        raise SystemExit("no mpiexec: pip install 'graphdl[distributed]'")
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    res = subprocess.run([mpiexec, "-n", str(ranks), sys.executable, os.path.abspath(__file__),
                          "--worker", model, "--steps", str(steps)],
                         capture_output=True, text=True, env=env, timeout=600)
    if res.returncode != 0:
        raise SystemExit(f"{model} x{ranks} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--models", default="cnn,resnet")
    ap.add_argument("--worker")
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.steps)
    print(f"{os.cpu_count()} CPUs, 1-minute load average {os.getloadavg()[0]:.1f}; global "
          f"batch {BATCH}, 1 thread per process, {args.rounds} rounds, wall time\n")
    print("| model | param MB | 1 proc steps/s | 2 procs steps/s | speed-up (median) "
          "| CPU ms/step 1 proc | CPU ms/step/rank 2 procs | all-reduce ms/step (in step) "
          "| transfer ms/step |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        runs: dict[int, list[dict]] = {1: [], 2: []}
        for r in range(args.rounds):
            for ranks in ((1, 2) if r % 2 == 0 else (2, 1)):
                runs[ranks].append(launch(model, ranks, args.steps))
        ratio = statistics.median(b["steps_per_s"] / a["steps_per_s"]
                                  for a, b in zip(runs[1], runs[2]))
        med = {k: {f: statistics.median(x[f] for x in v) for f in v[0] if f != "model"}
               for k, v in runs.items()}
        print(f"| {model} | {med[1]['param_bytes'] / 1e6:.3f} | {med[1]['steps_per_s']:.1f} "
              f"| {med[2]['steps_per_s']:.1f} | {ratio:.2f}x | {med[1]['cpu_ms']:.1f} "
              f"| {med[2]['cpu_ms']:.1f} | {med[2]['allreduce_ms']:.2f} "
              f"| {med[2]['transfer_ms']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
