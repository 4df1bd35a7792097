"""Every speed, memory and node-count target of graphdl in one run and one table.

    python -m benchmarks [--quick] [--only mlp,cnn,...] [--json]
    python benchmarks/run.py ...

One thread everywhere (BLAS through OMP/OPENBLAS/MKL_NUM_THREADS=1 set before NumPy loads,
``torch.set_num_threads(1)``, onnxruntime with one intra-op thread). Each section checks its
contenders' outputs equal first (a wrong-but-fast kernel cannot win), then times them with one
shared timer (benchmarks/harness.py): rounds in which every contender runs once, in alternating
order, measured in this thread's CPU time so other processes' load on a shared machine does not
tilt the result; each ratio is the median of the per-round ratios. Pass costs come from the pass
manager's trace (thread CPU time too, the fastest of a few runs). Sections:

- mlp, cnn, lstm: the training steps of the examples (batch 64), graphdl's interpreter on the
  gradient graph as built ("unoptimised") and after ``passes.optimize`` against hand-written
  NumPy and PyTorch eager;
- memory: peak memory (tracemalloc) of the interpreter's MLP step against hand-written NumPy;
- nodes: node counts of the MLP training step before and after the default pipeline;
- ort: onnxruntime on graphdl's export against onnxruntime on PyTorch's export (MLP, CNN);
- train: the exported training step (forward, backward, Adam) in onnxruntime against PyTorch
  eager, as a ratio of steps per second;
- passes: each pass's cost per node on generated graphs of 1k, 10k and 100k nodes and its
  100k/10k scaling, beside a plain linear walk over the same graphs (the machine's floor);
- realistic: issue 14's MLP and CIFAR ResNet training steps (and the LSTM where
  benchmarks/realistic_lstm.py exists) in onnxruntime and the interpreter against PyTorch
  eager, at 1 and 2 threads, and at 1 thread the exported step's products alone (the floor,
  benchmarks/product_floor.py) (benchmarks/bench_realistic.py; ``--quick`` shrinks the
  models).

Exit status 1 when a section's contenders disagree or a section fails (its row says why; the
other sections still run). ``--quick`` is a smoke run (few short rounds, generated graphs of 1k
and 10k nodes only).
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy loads its BLAS

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Callable  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from benchmarks.harness import (  # noqa: E402
    FAILED, OutputsDiffer, Row, interleaved, markdown, median_ratio, medians_us, same_outputs)

NO_TORCH = "torch not installed"


@dataclass
class Config:
    rounds: int = 21
    chunk_s: float = 0.02
    pass_sizes: tuple[int, ...] = (1000, 10_000, 100_000)
    pass_repeats: int = 5
    smoke: bool = False  # --quick: sections may also shrink their models

    @classmethod
    def quick(cls) -> "Config":
        return cls(rounds=5, chunk_s=0.005, pass_sizes=(1000, 10_000), pass_repeats=1,
                   smoke=True)


def has_torch() -> bool:
    try:
        importlib.import_module("torch")
    except ImportError:
        return False
    return True


def check_all(fns: dict[str, Callable[[], object]], ref: str,
              adapt: dict[str, Callable] | None = None) -> None:
    """Every contender's outputs against ``ref``'s (``adapt`` maps a contender's raw result to
    outputs by name)."""
    adapt = adapt or {}
    want = fns[ref]()
    for name, fn in fns.items():
        if name != ref:
            got = fn()
            same_outputs(f"{name} vs {ref}", adapt.get(name, lambda r: r)(got), want)


def step_rows(section: str, label: str, times: dict, targets: dict) -> list[Row]:
    """graphdl unoptimised / optimised against NumPy (with ``targets`` by plan) and torch."""
    rows = []
    for ref, ref_label in (("numpy", "NumPy"), ("torch", "torch eager")):
        for plan in ("unoptimised", "optimised"):
            metric = f"{label}: graphdl {plan} / {ref_label}"
            if ref not in times:
                rows.append(Row(section, metric, None, note=NO_TORCH))
                continue
            target = targets.get(plan) if ref == "numpy" else None
            rows.append(Row(section, metric, median_ratio(times, f"graphdl_{plan}", ref), target))
    return rows


# -- sections ----------------------------------------------------------------------------------


def mlp_contenders() -> dict[str, Callable[[], object]]:
    from benchmarks.bench_interpreter import contenders
    from benchmarks.mlp_step import batch, init_params, torch_mlp_step

    fns, _ = contenders()  # numpy, graphdl_unoptimised, graphdl_optimised on batch(64)
    feeds, params = batch(64), init_params()
    step = torch_mlp_step(params)
    if step is not None:
        fns["torch"] = lambda: step(feeds["x"], feeds["y"])
    return fns


def section_mlp(cfg: Config) -> tuple[list[Row], dict]:
    fns = mlp_contenders()
    check_all(fns, "numpy")
    times = interleaved(fns, cfg.rounds, cfg.chunk_s)
    targets = {"unoptimised": ("<=", 1.1), "optimised": ("<=", 1.0)}
    return step_rows("mlp", "MLP step", times, targets), {"median_us": medians_us(times)}


def section_memory(cfg: Config) -> tuple[list[Row], dict]:
    from benchmarks.bench_interpreter import peak_bytes

    fns = mlp_contenders()
    fns.pop("torch", None)  # tracemalloc sees NumPy's allocations, not torch's
    check_all(fns, "numpy")
    peak = {k: peak_bytes(fn) for k, fn in fns.items()}
    rows = [Row("memory", f"MLP step peak memory: graphdl {plan} / NumPy",
                peak[f"graphdl_{plan}"] / peak["numpy"], ("<=", 1.2))
            for plan in ("unoptimised", "optimised")]
    return rows, {"peak_kib": {k: v / 1024 for k, v in peak.items()}}


def section_nodes(cfg: Config) -> tuple[list[Row], dict]:
    import passes
    from benchmarks.mlp_step import mlp_forward, mlp_train_step

    step = mlp_train_step()
    names = [v.name for v in step.inputs if v.name not in ("x", "y")]
    grads = passes.grad(mlp_forward(), "loss", names)  # forward + backward, no update
    counts = {}
    rows = []
    for key, label, g, target in (("step", "MLP training step", step, (">=", 0.30)),
                                  ("grad", "MLP gradient graph", grads, None)):
        before, after = len(g.nodes), len(passes.optimize(g).nodes)
        counts[key] = {"before": before, "after": after}
        rows.append(Row("nodes", f"{label}: nodes removed by the pipeline",
                        1 - after / before, target, "%", f"{before} -> {after}"))
    return rows, counts


def section_cnn(cfg: Config) -> tuple[list[Row], dict]:
    import passes
    from benchmarks.bench_cnn import digits_batch, graphdl_step, numpy_step, torch_step
    from graphdl.engine.interpreter import Plan

    x, y = digits_batch()
    gg, params = graphdl_step()
    feeds = {"x": x, "y": y, **params}
    plain, fast = Plan(gg), Plan(passes.optimize(gg))
    fns = {"numpy": lambda: numpy_step(x, y, params), "graphdl_unoptimised": lambda: plain(feeds),
           "graphdl_optimised": lambda: fast(feeds)}
    step = torch_step(params)
    if step is not None:
        fns["torch"] = lambda: step(x, y)
    check_all(fns, "numpy")
    times = interleaved(fns, cfg.rounds, cfg.chunk_s)
    targets = {"unoptimised": ("<=", 1.2), "optimised": ("<=", 1.2)}
    return step_rows("cnn", "CNN step", times, targets), {"median_us": medians_us(times)}


def section_lstm(cfg: Config) -> tuple[list[Row], dict]:
    from benchmarks.bench_lstm import (batch, graphdl_step, numpy_step, torch_grads_as_graphdl,
                                       torch_step)

    plain, params = graphdl_step(optimize=False)
    fast, _ = graphdl_step(optimize=True)
    feeds = batch()
    all_feeds = {**feeds, **params}
    fns = {"numpy": lambda: numpy_step(params, feeds["x"], feeds["y"]),
           "graphdl_unoptimised": lambda: plain(all_feeds),
           "graphdl_optimised": lambda: fast(all_feeds)}
    step = torch_step(params, feeds["x"], feeds["y"])
    if step is not None:
        fns["torch"] = step
    check_all(fns, "numpy", {"torch": torch_grads_as_graphdl})
    times = interleaved(fns, cfg.rounds, cfg.chunk_s)
    targets = {"unoptimised": ("<=", 1.3), "optimised": ("<=", 1.3)}
    return step_rows("lstm", "LSTM step", times, targets), {"median_us": medians_us(times)}


def section_ort(cfg: Config) -> tuple[list[Row], dict]:
    models = ("mlp", "cnn")
    metric = "{} inference: ORT on graphdl's export / ORT on PyTorch's export"
    if not has_torch():
        return [Row("ort", metric.format(m.upper()), None, ("<=", 1.05), note=NO_TORCH)
                for m in models], {}
    from benchmarks.bench_ort_export import contenders

    rows, info = [], {}
    for kind in models:
        try:
            fns, _ = contenders(kind)  # checks the two sessions' outputs equal
        except AssertionError as e:
            raise OutputsDiffer(f"ORT {kind}: {str(e).strip().splitlines()[0]}") from e
        times = interleaved(fns, cfg.rounds, cfg.chunk_s)
        rows.append(Row("ort", metric.format(kind.upper()),
                        median_ratio(times, "graphdl", "torch"), ("<=", 1.05)))
        info[kind] = medians_us(times)
    return rows, {"median_us": info}


def check_train_step(name: str, step, x: np.ndarray, y: np.ndarray, steps: int = 3) -> None:
    """The losses of the first ``steps`` Adam steps in onnxruntime and in torch agree."""
    import torch

    from benchmarks.bench_train_step import BATCH, torch_model
    from graphdl.training.step_runner import OrtRunner

    runner, hp = OrtRunner(step, threads=1), step.hyperparam_feeds()
    forward, params = torch_model(name, step)
    opt = torch.optim.Adam(params, lr=1e-3)
    ours, theirs = [], []
    for i in range(steps):
        xb, yb = x[i * BATCH:(i + 1) * BATCH], y[i * BATCH:(i + 1) * BATCH]
        ours.append(runner({"x": xb, "y": yb}, hp)[step.manifest["loss"]])
        loss = torch.nn.functional.cross_entropy(forward(torch.from_numpy(xb)),
                                                 torch.from_numpy(yb))
        opt.zero_grad()
        loss.backward()
        opt.step()
        theirs.append(loss.item())
    same_outputs(f"train {name}: ORT vs torch losses", {"loss": ours}, {"loss": theirs})


def section_train(cfg: Config) -> tuple[list[Row], dict]:
    models = ("mlp", "cnn")
    metric = "{} training step (Adam): ORT steps/s / torch eager steps/s"
    if not has_torch():
        return [Row("train", metric.format(m.upper()), None, (">=", 2.0), note=NO_TORCH)
                for m in models], {}
    from benchmarks import bench_train_step as ts

    rows, info = [], {}
    for name, make in (("mlp", ts.mlp_step), ("cnn", ts.cnn_step)):
        step = make()
        x, y = ts._data(1024, image=name == "cnn")
        check_train_step(name, step, x, y)
        fns = {"ort": ts.ort_stepper(step, x, y), "torch": ts.torch_stepper(name, step, x, y)}
        times = interleaved(fns, cfg.rounds, cfg.chunk_s)
        rows.append(Row("train", metric.format(name.upper()), median_ratio(times, "torch", "ort"),
                        (">=", 2.0)))
        info[name] = medians_us(times)
    return rows, {"median_us": info}


def _k(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 else str(n)


def section_passes(cfg: Config) -> tuple[list[Row], dict]:
    from benchmarks.bench_passes import pass_seconds

    res = pass_seconds(list(cfg.pass_sizes), cfg.pass_repeats)
    small, big = sorted(res)[-2:]
    sec_s, sec_b = res[small]["seconds"], res[big]["seconds"]
    walk = sec_b["linear_walk"] / sec_s["linear_walk"]
    scale = f"{_k(big)} / {_k(small)} time"
    bound = 1.2 * big / small  # 12 for 100k against 10k: linear, with 20% slack
    rows = []
    for name, sec in sec_b.items():
        if name == "linear_walk":
            continue
        rows.append(Row("passes", f"{name}: us per node at {_k(big)}",
                        sec / res[big]["nodes"] * 1e6, ("<=", 10.0), "us"))
        growth = sec / sec_s[name]
        rows.append(Row("passes", f"{name}: {scale}", growth, ("<=", bound),
                        note=f"{growth / walk:.2f}x the walk's"))
    rows.append(Row("passes", f"linear walk (the floor): {scale}", walk))
    info = {_k(n): {"nodes": m["nodes"], "after": m["after"],
                    "us_per_node": {k: v / m["nodes"] * 1e6 for k, v in m["seconds"].items()}}
            for n, m in res.items()}
    return rows, info


def section_realistic(cfg: Config) -> tuple[list[Row], dict]:
    from benchmarks.bench_realistic import section

    return section(cfg)


SECTIONS: dict[str, Callable[[Config], tuple[list[Row], dict]]] = {
    "mlp": section_mlp, "memory": section_memory, "nodes": section_nodes, "cnn": section_cnn,
    "lstm": section_lstm, "ort": section_ort, "train": section_train, "passes": section_passes,
    "realistic": section_realistic,
}


# -- driver ------------------------------------------------------------------------------------


def run(sections: list[str], cfg: Config, progress: bool = True) -> tuple[list[Row], dict]:
    """Rows of every section in ``sections`` and the details by section. A section whose
    contenders disagree, or that fails, yields one failed row saying why (the traceback goes to
    stderr) and the other sections still run."""
    rows: list[Row] = []
    details: dict = {}
    for name in sections:
        if progress:
            print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
        try:
            got, details[name] = SECTIONS[name](cfg)
        except OutputsDiffer as e:
            got, details[name] = [Row(name, f"{name}: outputs checked equal", None,
                                      note=f"{FAILED} outputs differ: {e}")], {}
        except Exception as e:  # noqa: BLE001 - reported in the table, the run goes on
            traceback.print_exc()
            got, details[name] = [Row(name, f"{name}: section ran", None,
                                      note=f"{FAILED} {type(e).__name__}: {e}")], {}
        rows += got
    return rows, details


def meta(argv: list[str], cfg: Config) -> dict:
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for mod in ("onnxruntime", "torch"):
        try:
            versions[mod] = importlib.import_module(mod).__version__
        except ImportError:
            versions[mod] = None
    return {"command": " ".join(["python -m benchmarks", *argv]), "threads": 1,
            "clock": "thread CPU time, median of per-round ratios", "rounds": cfg.rounds,
            "pass_sizes": list(cfg.pass_sizes), "cpus": os.cpu_count(),
            "load_average": [round(v, 2) for v in os.getloadavg()], "versions": versions}


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="machine-readable output")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: few short rounds, generated graphs of 1k and 10k nodes")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help=f"comma-separated sections (default all: {','.join(SECTIONS)})")
    ap.add_argument("--rounds", type=int, help="timing rounds per contender set")
    args = ap.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        ap.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    cfg = Config.quick() if args.quick else Config()
    if args.rounds:
        cfg.rounds = args.rounds
    info = meta(argv, cfg)
    rows, details = run(args.sections, cfg)
    info["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    if args.json:
        print(json.dumps({"meta": info, "rows": [r.as_dict() for r in rows],
                          "details": details}, indent=1))
    else:
        before, after = info["load_average"][0], info["load_average_after"][0]
        print(f"`{info['command']}` ({info['cpus']} CPUs, 1-minute load average {before:.1f} "
              f"before, {after:.1f} after; 1 thread; {cfg.rounds} interleaved rounds, thread "
              "CPU time)\n")
        print(markdown(rows))
    failed = any(r.note.startswith(FAILED) for r in rows)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
