"""Inference on imported ONNX models: the light model-zoo CNNs shipped in the onnx wheel
(onnx/backend/test/data/light), imported with graphdl.from_onnx. Measured in one run, one thread
each (NumPy's BLAS too):

- graphdl: its NumPy interpreter (graphdl.engine.interpreter.Plan) on the imported graph after
  graphdl's own optimisation pipeline (passes.optimize: batch norms folded into the convs,
  elementwise chains fused), which is graphdl's inference path; the pipeline's time is
  printed separately (optimize_ms, once per model, not part of graphdl_ms). ``--no-optimize``
  times the imported graph as it is;
- onnx.reference.ReferenceEvaluator on the same ONNX model;
- onnxruntime (CPU execution provider).

Each model's ConstantOfShape weights are made initializers first (same values), so no engine
rebuilds its weights on every run. The outputs of the three are compared before timing
(ReferenceEvaluator gets SqueezeNet and DenseNet-121 wrong: old-opset Softmax and
BatchNormalization semantics; such a mismatch is reported, not timed as a failure).

Targets (issue 7): graphdl >= 20x faster than ReferenceEvaluator, and within 5x of
onnxruntime.

    python benchmarks/bench_import.py [--models resnet50,squeezenet] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one thread for every engine (set before numpy loads)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import graphdl as gd  # noqa: E402
import passes  # noqa: E402
from graphdl.engine.interpreter import Plan  # noqa: E402

LIGHT = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
DEFAULT = ("squeezenet", "shufflenet", "resnet50", "inception_v1", "inception_v2",
           "densenet121")


def materialise(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with each ConstantOfShape (static shape) made an initializer of its value."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    given = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    kept, made = [], []
    for n in m.graph.node:
        if n.op_type == "ConstantOfShape" and n.input[0] in given:
            value = numpy_helper.to_array(n.attribute[0].t).reshape(-1)[0]
            arr = np.full(tuple(int(d) for d in given[n.input[0]]), value)
            made.append(numpy_helper.from_array(arr, n.output[0]))
        else:
            kept.append(n)
    del m.graph.node[:]
    m.graph.node.extend(kept)
    m.graph.initializer.extend(made)
    return m


def model_input(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    inits = {t.name for t in model.graph.initializer}
    (x,) = [v for v in model.graph.input if v.name not in inits]
    shape = tuple(d.dim_value or 1 for d in x.type.tensor_type.shape.dim)
    return {x.name: np.random.default_rng(0).random(shape, np.float32)}


def best_time(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def bench(name: str, repeats: int, optimize: bool = True) -> dict[str, object]:
    import onnxruntime as ort
    from onnx.reference import ReferenceEvaluator

    model = materialise(onnx.load(os.path.join(LIGHT, f"light_{name}.onnx")))
    feeds = model_input(model)
    out = model.graph.output[0].name
    graph = gd.from_onnx(model)
    t_opt = time.perf_counter()
    if optimize:
        graph = passes.optimize(graph)
    t_opt = time.perf_counter() - t_opt
    plan = Plan(graph)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    ref = ReferenceEvaluator(model)

    ours = plan(feeds)[out]
    np.testing.assert_allclose(ours, sess.run([out], feeds)[0], rtol=1e-4, atol=1e-6)
    theirs = ref.run([out], feeds)[0]  # also the reference's warm-up
    t_ref = time.perf_counter()
    ref.run([out], feeds)
    t_ref = time.perf_counter() - t_ref  # one timed run: the reference is slow
    ref_agrees = bool(np.allclose(ours, theirs, rtol=1e-4, atol=1e-6))
    t_gd = best_time(lambda: plan(feeds), repeats)
    t_ort = best_time(lambda: sess.run([out], feeds), repeats)
    return {"model": name, "graphdl_ms": round(1e3 * t_gd, 1), "ort_ms": round(1e3 * t_ort, 1),
            "reference_ms": round(1e3 * t_ref, 1), "reference_agrees": ref_agrees,
            "reference_over_graphdl": round(t_ref / t_gd, 1),
            "graphdl_over_ort": round(t_gd / t_ort, 2),
            "optimize_ms": round(1e3 * t_opt, 1) if optimize else "off"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=",".join(DEFAULT),
                    help="light models to run (also: bvlc_alexnet, vgg19, zfnet512)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-optimize", action="store_true",
                    help="time the imported graph without passes.optimize")
    args = ap.parse_args()
    for name in args.models.split(","):
        print(f"running {name} ...", flush=True)
        row = bench(name, args.repeats, not args.no_optimize)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
