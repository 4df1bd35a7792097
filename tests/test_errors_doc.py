"""docs/errors.md documents every user-facing error class, and its example messages are the
messages the code really produces: each example is re-made here by the mistake it describes."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

import graphdl as gd
import graphdl.core.errors
from graphdl.core.ir import Graph, Node, Value
from graphdl.engine.runtime import OrtRunError, ProviderError
from graphdl.onnx.specialisation import NotSpecialisedError
from graphdl.core.types import tensor_type

DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
LOC = re.compile(r" at [^\s:()]+\.py:\d+")
IMPORTS = re.compile(r"(graphdl imports: \w+, \w+, \w+), .*$")  # a growing list: its start
#: onnxruntime's own detail (source paths, line numbers) changes between its versions
ORT_DETAIL = re.compile(r"(Status Message:) .*$")


def _graph_error():
    b = gd.GraphBuilder("model")
    x = b.input("x", ["N", 3])
    g = b.build({"y": gd.relu(x)})
    g.value("logits")


def _shape_error():
    b = gd.GraphBuilder("model")
    x = b.input("x", ["N", 3])
    w = b.param("w", np.zeros((4, 2), np.float32))
    return x @ w


def _dtype_error():
    b = gd.GraphBuilder("model")
    x = b.input("x", ["N", 3])
    return x + b.input("z", ["N", 3], "float64")


def _grad_error():
    import passes

    b = gd.GraphBuilder("model")
    x = b.input("x", ["N", 3])
    w = b.param("w", np.ones(3, np.float32))
    passes.grad(b.build({"y": x * w}), "y", ["w"])


def _onnx_error(tmp_path: Path):
    (tmp_path / "model.onnx").write_bytes(b"")  # parses as an empty ModelProto
    import os

    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        gd.from_onnx("model.onnx")
    finally:
        os.chdir(old)


def _unsupported_op_error():
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    graph = helper.make_graph([helper.make_node("Erf", ["x"], ["y"], name="erf")], "g", [x], [y])
    gd.from_onnx(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _feed_error():
    b = gd.GraphBuilder("model")
    x = b.input("x", ["N", 3])
    gd.run(b.build({"y": gd.relu(x)}), {"x": np.zeros((2, 3), np.float64)})


def _pass_error():
    import passes

    class Broken(passes.Pass):
        name = "broken"

        def run(self, g):
            raise ValueError("nothing to do")

    b = gd.GraphBuilder("model")
    g = b.build({"y": gd.relu(b.input("x", ["N", 3]))})
    passes.PassManager([Broken()]).run(g)


def _verify_error():
    x = Value("x", tensor_type("float32", ["N", 3]))
    h = Value("h", tensor_type("float32", ["N", 3]))
    y = Value("y", tensor_type("float32", ["N", 3]))
    nodes = (Node("relu", (h,), (y,), {}, "y"), Node("relu", (x,), (h,), {}, "h"))
    gd.verify(Graph((x,), nodes, (y,), {}, "model"))


def _provider_error():
    b = gd.GraphBuilder("model")
    x = b.input("x", ["N", 3])
    gd.run(b.build({"y": gd.relu(x)}), {"x": np.zeros((2, 3), np.float32)}, "ort", "tpu")


def _ort_run_error():
    b = gd.GraphBuilder("model")
    x, shape = b.input("x", ["N"]), b.input("shape", [2], "int64")
    g = b.build({"y": gd.reshape(x, shape)})
    gd.run(g, {"x": np.zeros(4, np.float32), "shape": np.array([3, 3])}, "ort")


def _not_specialised_error():
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x", "axes"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3]),
         helper.make_tensor_value_info("axes", TensorProto.INT64, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    gd.to_onnx(gd.from_onnx(model))


TRIGGERS = {
    "GraphError": _graph_error, "ShapeError": _shape_error, "DTypeError": _dtype_error,
    "GradError": _grad_error, "OnnxError": _onnx_error, "FeedError": _feed_error,
    "UnsupportedOpError": _unsupported_op_error,
    "PassError": _pass_error, "VerifyError": _verify_error, "ProviderError": _provider_error,
    "OrtRunError": _ort_run_error, "NotSpecialisedError": _not_specialised_error,
}


def error_classes() -> dict[str, type]:
    """Every GraphError subclass defined in graphdl.core.errors, plus runtime's ProviderError and
    OrtRunError and specialisation's NotSpecialisedError."""
    found = {name: cls for name, cls in vars(graphdl.core.errors).items()
             if inspect.isclass(cls) and issubclass(cls, gd.GraphError)}
    found.update(ProviderError=ProviderError, OrtRunError=OrtRunError,
                 NotSpecialisedError=NotSpecialisedError)
    return found


def documented() -> dict[str, list[str]]:
    """Class name -> the example messages (lines of its ``text`` blocks) in docs/errors.md."""
    text = DOC.read_text()
    out: dict[str, list[str]] = {}
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        name = section.split()[0].strip("`")
        blocks = re.findall(r"```text\n(.*?)```", section, re.S)
        out[name] = [line for b in blocks for line in b.splitlines() if line.strip()]
    return out


def normal(message: str) -> str:
    """A message with the user's file:line replaced, as the doc writes it (model.py:LINE), and
    the list of the ONNX ops graphdl imports cut to its first entries."""
    text = LOC.sub(" at model.py:LINE", " ".join(message.split()))
    text = ORT_DETAIL.sub(r"\1 ...", text)
    return IMPORTS.sub(r"\1, ...", text)


def test_every_error_class_is_documented():
    docs = documented()
    missing = sorted(set(error_classes()) - set(docs))
    assert not missing, f"docs/errors.md lacks a section for {missing}"
    assert set(TRIGGERS) == set(error_classes()), "every class needs a trigger in this test"


@pytest.mark.parametrize("name", sorted(TRIGGERS))
def test_example_message_is_what_the_code_says(name, tmp_path):
    cls = error_classes()[name]
    trigger = TRIGGERS[name]
    args = [tmp_path] if inspect.signature(trigger).parameters else []
    with pytest.raises(cls) as info:
        trigger(*args)
    assert type(info.value) is cls, f"{trigger.__name__} raised {type(info.value).__name__}"
    examples = [normal(m) for m in documented()[name]]
    assert normal(str(info.value)) in examples, (normal(str(info.value)), examples)


TINY = '''import numpy as np
import graphdl as gd


def model():
    b = gd.GraphBuilder("tiny")
    x = b.input("x", ["N", 3])
    w = b.param("w", np.ones((3, 2), np.float32))
    bias = b.param("bias", np.zeros(2, np.float32))
    return b.build({"loss": gd.reduce_mean(gd.tanh(x @ w + bias))})
'''


@pytest.mark.parametrize("argv", [
    ["inspect", "model.py"],
    ["grad", "tiny.py", "-o", "g.onnx", "--wrt", "nope"],
    ["explain", "tiny.py", "--wrt", "nope"],
], ids=lambda a: a[0])
def test_command_line_examples_are_what_the_command_prints(argv, tmp_path, monkeypatch, capsys):
    from graphdl.tools import cli

    (tmp_path / "tiny.py").write_text(TINY)
    monkeypatch.chdir(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err in documented()["UserError"], err
