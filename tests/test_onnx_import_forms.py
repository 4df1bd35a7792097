"""ONNX import of the forms an op or a model file can take: external data (only plain files
inside the model's directory), model metadata, every Constant value_* form, Split's three ways of
giving sizes, Pad's attribute/input/axes forms and border modes, explicit broadcasting before
opset 7, optional inputs and multiple outputs, and the error for an unsupported op.
onnxruntime on the same file is the reference where it runs the opset; hand-derived values
otherwise."""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import graphdl as gd

F32 = TensorProto.FLOAT
RNG = np.random.default_rng(3)


def make(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "m", inputs, outputs, list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def vi(name, shape, dtype=F32):
    return helper.make_tensor_value_info(name, dtype, shape)


def ort_run(model: onnx.ModelProto, feeds: dict) -> dict:
    ort = pytest.importorskip("onnxruntime")
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))


def assert_matches_ort(model: onnx.ModelProto, feeds: dict) -> dict:
    want = ort_run(model, feeds)
    got = gd.run(gd.from_onnx(model), feeds)
    for k, w in want.items():
        assert got[k].dtype == w.dtype and got[k].shape == w.shape, k
        np.testing.assert_allclose(got[k], w, rtol=1e-6, atol=1e-6, err_msg=k)
    return got


# -- external data and metadata ------------------------------------------------------------------


def _external_model(folder, location: str) -> str:
    """A model y = x + w whose w lives in the external file ``location``; returns its path."""
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = numpy_helper.from_array(w, "w")
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(w.nbytes))):
        entry = t.external_data.add()
        entry.key, entry.value = key, value
    m = make([helper.make_node("Add", ["x", "w"], ["y"])], [vi("x", [2, 3])], [vi("y", [2, 3])],
             [t])
    path = os.path.join(folder, "model.onnx")
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    return path


def test_external_data_inside_the_model_directory_is_read(tmp_path):
    (tmp_path / "w.bin").write_bytes(np.arange(6, dtype=np.float32).tobytes())
    g = gd.from_onnx(_external_model(tmp_path, "w.bin"))
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    want = x + np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(gd.run(g, {"x": x})["y"], want)


@pytest.mark.parametrize("where", ["dotdot", "absolute", "symlink", "missing"])
def test_external_data_outside_the_model_directory_is_refused(tmp_path, where):
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(6, dtype=np.float32).tobytes())
    location = {"dotdot": "../secret.bin", "absolute": str(secret), "symlink": "link.bin",
                "missing": "nothing.bin"}[where]
    if where == "symlink":
        os.symlink(secret, model_dir / "link.bin")
    with pytest.raises(gd.OnnxError, match=r"tensor 'w'.*external data"):
        gd.from_onnx(_external_model(model_dir, location))


def test_external_data_in_a_model_proto_is_refused():
    t = numpy_helper.from_array(np.zeros(3, np.float32), "w")
    t.data_location = TensorProto.EXTERNAL
    m = make([helper.make_node("Identity", ["w"], ["y"])], [], [vi("y", [3])], [t])
    with pytest.raises(gd.OnnxError, match="external file; pass the model's path"):
        gd.from_onnx(m)


def test_model_metadata_is_kept():
    m = make([helper.make_node("Relu", ["x"], ["y"])], [vi("x", [2])], [vi("y", [2])], opset=13)
    m.producer_name, m.producer_version, m.model_version = "maker", "1.2", 5
    m.doc_string = "a relu"
    helper.set_model_props(m, {"author": "someone", "license": "MIT"})
    meta = gd.from_onnx(m).metadata
    assert meta == {"producer_name": "maker", "producer_version": "1.2", "model_version": "5",
                    "doc_string": "a relu", "ir_version": "8", "opset": "13",
                    "author": "someone", "license": "MIT"}


# -- Constant, optional inputs, multiple outputs -----------------------------------------------


def _constant(name: str, **attr) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], **attr)


def test_every_constant_form_matches_onnxruntime():
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([5.0, -2.0], np.float32), "v"),
        numpy_helper.from_array(np.array([1, 4], np.int64), "i"), [2, 3])
    nodes = [_constant("a", value=numpy_helper.from_array(np.ones((2, 3), np.float32))),
             _constant("b", value_float=2.5), _constant("c", value_floats=[1.0, 2.0, 3.0]),
             _constant("d", value_int=4), _constant("e", value_ints=[2, 3]),
             _constant("f", sparse_value=sparse),
             helper.make_node("Cast", ["d"], ["df"], to=F32),
             helper.make_node("Reshape", ["x", "e"], ["xr"]),
             helper.make_node("Sum", ["xr", "a", "b", "c", "df", "f"], ["y"])]
    m = make(nodes, [vi("x", [6])], [vi("y", [2, 3])], opset=13)
    got = assert_matches_ort(m, {"x": np.arange(6, dtype=np.float32)})
    want = np.arange(6).reshape(2, 3) + 1 + 2.5 + np.array([1, 2, 3]) + 4
    np.testing.assert_allclose(got["y"], want + np.array([[0, 5, 0], [0, -2, 0]]))


def test_optional_inputs_and_multiple_outputs():
    """Clip with only a max (the min input left empty), and a node with two outputs."""
    nodes = [helper.make_node("Clip", ["x", "", "hi"], ["c"]),
             helper.make_node("Split", ["c"], ["s1", "s2"], axis=1, num_outputs=2)]
    inits = [numpy_helper.from_array(np.array(0.5, np.float32), "hi")]
    m = make(nodes, [vi("x", [2, 4])], [vi("s1", [2, 2]), vi("s2", [2, 2])], inits, opset=18)
    assert_matches_ort(m, {"x": RNG.standard_normal((2, 4)).astype(np.float32)})


# -- Split, Pad, legacy broadcasting -----------------------------------------------------------


@pytest.mark.parametrize("opset, form", [(11, "attr"), (11, "equal"), (13, "input"),
                                         (18, "num_outputs")])
def test_split_forms_match_onnxruntime(opset, form):
    inits, ins, attrs, outs = [], ["x"], {"axis": 1}, ["a", "b", "c"]
    if form == "attr":
        attrs["split"] = [1, 3, 3]
    elif form == "input":
        inits.append(numpy_helper.from_array(np.array([2, 2, 3], np.int64), "sizes"))
        ins.append("sizes")
    elif form == "num_outputs":
        attrs["num_outputs"] = 3  # 7 = 3 + 3 + 1
    width = 6 if form == "equal" else 7
    m = make([helper.make_node("Split", ins, outs, **attrs)], [vi("x", [2, width])],
             [vi(o, None) for o in outs], inits, opset=opset)
    assert_matches_ort(m, {"x": RNG.standard_normal((2, width)).astype(np.float32)})


@pytest.mark.parametrize("opset, mode, axes", [(2, "constant", False), (11, "constant", False),
                                               (18, "constant", True), (11, "reflect", False),
                                               (11, "edge", False), (19, "wrap", True)])
def test_pad_forms_match_onnxruntime(opset, mode, axes):
    x = RNG.standard_normal((1, 2, 4, 5)).astype(np.float32)
    pads = [0, 0, 1, 2, 0, 0, 3, -1] if not axes else [1, 2, 3, -1]
    if opset < 11:
        node = helper.make_node("Pad", ["x"], ["y"], mode=mode, pads=pads, value=1.5)
        inits = []
    else:
        ins = ["x", "pads", "value"] + (["axes"] if axes else [])
        node = helper.make_node("Pad", ins, ["y"], mode=mode)
        inits = [numpy_helper.from_array(np.array(pads, np.int64), "pads"),
                 numpy_helper.from_array(np.array(1.5, np.float32), "value"),
                 numpy_helper.from_array(np.array([2, 3], np.int64), "axes")][:len(ins) - 1]
    m = make([node], [vi("x", list(x.shape))], [vi("y", None)], inits, opset=opset)
    assert_matches_ort(m, {"x": x})


def test_explicit_broadcast_before_opset_7_aligns_at_axis():
    """Add(x [2, 3, 4], b [3], broadcast=1, axis=1) adds b[j] to x[:, j, :] (numpy alone would
    align b with the last axis and fail)."""
    m = make([helper.make_node("Add", ["x", "b"], ["y"], broadcast=1, axis=1)],
             [vi("x", [2, 3, 4]), vi("b", [3])], [vi("y", [2, 3, 4])], opset=6)
    x = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    b = np.array([10.0, 20.0, 30.0], np.float32)
    got = gd.run(gd.from_onnx(m), {"x": x, "b": b})["y"]
    np.testing.assert_allclose(got, x + b[None, :, None])


def test_prelu_before_opset_7_is_per_channel():
    m = make([helper.make_node("PRelu", ["x", "slope"], ["y"])],
             [vi("x", [1, 2, 3]), vi("slope", [2])], [vi("y", [1, 2, 3])], opset=6)
    x = np.array([[[-1.0, 2.0, -3.0], [-4.0, 5.0, -6.0]]], np.float32)
    got = gd.run(gd.from_onnx(m), {"x": x, "slope": np.array([0.5, 0.1], np.float32)})["y"]
    np.testing.assert_allclose(got, [[[-0.5, 2.0, -1.5], [-0.4, 5.0, -0.6]]])


# -- unsupported ops -----------------------------------------------------------------------------


def test_unsupported_op_names_the_op_node_opset_and_what_is_supported():
    m = make([helper.make_node("Hardmax", ["x"], ["y"], name="hm")], [vi("x", [2, 3])],
             [vi("y", [2, 3])], opset=15)
    with pytest.raises(gd.OnnxError) as e:
        gd.from_onnx(m)
    msg = str(e.value)
    assert "ONNX node 'hm' (op Hardmax) is not supported at opset 15" in msg
    assert "Conv" in msg and "LRN" in msg and "Tile" in msg and "Split" in msg
