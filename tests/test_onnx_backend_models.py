"""The ONNX backend model suites shipped in the ``onnx`` wheel, through ``from_onnx`` and
graphdl's interpreter, at the models' own opsets (no version converter):

- ``pytorch-converted``, ``pytorch-operator`` and ``simple`` under onnx/backend/test/data: each a
  model.onnx with test_data_set_*/{input,output}_*.pb; SKIPPED says why each skipped model is.
- the light model-zoo architectures under onnx/backend/test/data/light (AlexNet, DenseNet-121,
  Inception v1/v2, ResNet-50, ShuffleNet, SqueezeNet, VGG-19, ZFNet-512), fed the input onnx's
  backend runner makes (``arange(n) / n``) and compared with the stored output at onnx's
  tolerances. Their weights are all equal, so each also runs with random weights against
  onnxruntime (rtol 1e-4), comparing the logits before the final Softmax as well; for the three
  biggest this check is marked ``heavy`` (left out by default, ``pytest -m heavy`` runs it).
"""
from __future__ import annotations

import glob
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import graphdl as gd
import passes

DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
SUITES = ("pytorch-converted", "pytorch-operator", "simple")
#: model -> why it is skipped
SKIPPED: dict[str, str] = {}
#: light model -> (rtol, atol) as in onnx.backend.test.case.model
LIGHT = {"bvlc_alexnet": (1e-3, 1e-7), "densenet121": (2e-3, 1e-7),
         "inception_v1": (1e-3, 1e-7), "inception_v2": (1e-3, 1e-7),
         "resnet50": (1e-3, 1e-7), "shufflenet": (1e-3, 1e-7), "squeezenet": (1e-3, 1e-7),
         "vgg19": (1e-3, 1e-7), "zfnet512": (1e-3, 1e-7)}


def _models() -> list[str]:
    return sorted(f"{s}/{os.path.basename(d)}" for s in SUITES
                  for d in glob.glob(os.path.join(DATA, s, "test_*")))


def _load_tensors(pattern: str) -> list[np.ndarray]:
    return [numpy_helper.to_array(onnx.load_tensor(f)) for f in sorted(glob.glob(pattern))]


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {t.name for t in model.graph.initializer}
    return [v for v in model.graph.input if v.name not in inits]


def test_suites_are_complete():
    models = _models()
    assert len(models) == 140
    assert set(SKIPPED) <= set(models), "a skip names a model that no longer exists"


@pytest.mark.parametrize("name", _models())
def test_backend_model(name: str):
    if name in SKIPPED:
        pytest.skip(SKIPPED[name])
    folder = os.path.join(DATA, name)
    model = onnx.load(os.path.join(folder, "model.onnx"))
    graph = passes.expand_gradients(gd.from_onnx(model))  # the Gradient models' requests
    sets = sorted(glob.glob(os.path.join(folder, "test_data_set_*")))
    assert sets
    for data in sets:
        inputs = _load_tensors(os.path.join(data, "input_*.pb"))
        want = _load_tensors(os.path.join(data, "output_*.pb"))
        feeds = dict(zip([v.name for v in _graph_inputs(model)], inputs))
        got = gd.run(graph, feeds)
        for out, w in zip(model.graph.output, want):
            assert got[out.name].shape == w.shape, f"{name}: {out.name}"
            if w.dtype.kind not in "fc":  # strings, ints, bools: exactly equal
                np.testing.assert_array_equal(got[out.name], w, err_msg=f"{name}: {out.name}")
                continue
            np.testing.assert_allclose(got[out.name], w, rtol=1e-3, atol=1e-5,
                                       err_msg=f"{name}: {out.name}")


# -- the light model zoo -------------------------------------------------------------------------


def light_model(name: str) -> onnx.ModelProto:
    return onnx.load(os.path.join(DATA, "light", f"light_{name}.onnx"))


def light_input(model: onnx.ModelProto, dtype=np.float32) -> dict[str, np.ndarray]:
    """The input onnx's backend runner feeds a light model: arange(n) / n in its shape."""
    (x,) = _graph_inputs(model)
    shape = tuple(d.dim_value or 1 for d in x.type.tensor_type.shape.dim)
    n = int(np.prod(shape))
    return {x.name: (np.arange(n).reshape(shape) / n).astype(dtype)}


def randomise(model: onnx.ModelProto, seed: int = 0, dtype=np.float32) -> onnx.ModelProto:
    """The model with random weights: each ConstantOfShape weight and float initializer
    becomes a random initializer, He-scaled uniform for weights of rank >= 2, the constant
    times U(0.5, 1.5) for vectors (batch norm scales and variances stay positive).
    ``dtype`` float64 retypes the whole model."""
    rng = np.random.default_rng(seed)
    m = onnx.ModelProto()
    m.CopyFrom(model)
    given = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    consts = {n.output[0]: np.full(tuple(int(d) for d in given[n.input[0]]),
                                   numpy_helper.to_array(n.attribute[0].t).reshape(-1)[0])
              for n in m.graph.node if n.op_type == "ConstantOfShape"}
    kept = [n for n in m.graph.node if n.op_type != "ConstantOfShape"]
    used = {i for n in kept for i in n.input}
    weights = {**{k: a for k, a in given.items() if a.dtype.kind == "f"}, **consts}
    inits = [numpy_helper.from_array(_random_like(a, rng).astype(dtype), k)
             for k, a in weights.items() if k in used]
    inits += [numpy_helper.from_array(a, k) for k, a in given.items()
              if k in used and k not in weights]
    del m.graph.node[:], m.graph.initializer[:], m.graph.value_info[:]
    m.graph.node.extend(kept)
    m.graph.initializer.extend(inits)
    inputs = [v for v in m.graph.input if v.name not in given or v.name in used]
    del m.graph.input[:]
    m.graph.input.extend(inputs)
    for v in list(m.graph.input) + list(m.graph.output):
        if v.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            v.type.tensor_type.elem_type = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return m


def _random_like(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if a.ndim >= 2:
        bound = np.float32(np.sqrt(6.0 / np.prod(a.shape[1:])))
        return (rng.random(a.shape, np.float32) * 2 - 1) * bound
    return a * rng.uniform(0.5, 1.5, a.shape)


def with_logits(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model with the input of its last Softmax (DenseNet-121 has none: the input of its
    last node) as a second output."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    soft = [n for n in m.graph.node if n.op_type == "Softmax"] or list(m.graph.node)
    m.graph.output.append(onnx.helper.make_empty_tensor_value_info(soft[-1].input[0]))
    return m


@pytest.mark.parametrize("name", sorted(LIGHT))
def test_light_model_matches_stored_output(name: str):
    model = light_model(name)
    want = numpy_helper.to_array(onnx.load_tensor(
        os.path.join(DATA, "light", f"light_{name}_output_0.pb")))
    got = gd.run(gd.from_onnx(model), light_input(model))[model.graph.output[0].name]
    rtol, atol = LIGHT[name]
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


#: the light models with 60M+ weights: making and loading them takes seconds, so their random
#: weight checks are marked heavy (``pytest -m heavy`` runs them)
HEAVY = ("bvlc_alexnet", "vgg19", "zfnet512")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.heavy) if n in HEAVY
                                  else n for n in sorted(LIGHT)])
def test_light_model_with_random_weights_matches_onnxruntime(name: str):
    ort = pytest.importorskip("onnxruntime")
    model = with_logits(randomise(light_model(name)))
    feeds = light_input(model)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    got = gd.run(gd.from_onnx(model), feeds)
    logits = model.graph.output[1].name
    spread = np.ptp(want[logits]) / np.abs(want[logits]).max()
    assert spread > 0.1, "the random weights should spread the logits"
    for k, w in want.items():
        scale = np.abs(w).max()
        np.testing.assert_allclose(got[k], w, rtol=1e-4, atol=1e-4 * scale, err_msg=k)
