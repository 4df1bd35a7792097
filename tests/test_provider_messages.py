"""ProviderError speaks to whoever asked: Python callers hear of ``provider=``/``backend=``
arguments, command-line users of ``--provider``/``--backend`` options."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import graphdl as gd
from graphdl.tools import cli
from graphdl.engine.runtime import ProviderError


def _graph() -> gd.Graph:
    b = gd.GraphBuilder("model")
    return b.build({"y": gd.relu(b.input("x", [2]))})


@pytest.fixture
def no_cuda(monkeypatch):
    """This machine's onnxruntime without CUDA, whatever it really has."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])


def test_python_message_names_the_argument(no_cuda):
    with pytest.raises(ProviderError) as e:
        gd.run(_graph(), {"x": np.ones(2, np.float32)}, backend="ort", provider="cuda")
    assert "use provider='cpu' or 'auto'" in str(e.value) and "--" not in str(e.value)
    with pytest.raises(ProviderError) as e:
        gd.run(_graph(), {"x": np.ones(2, np.float32)}, backend="numpy", provider="cuda")
    assert "provider='cuda'; use backend='ort'" in str(e.value) and "--" not in str(e.value)


@pytest.mark.parametrize("argv,said", [
    (["--backend", "ort", "--provider", "cuda"], "use --provider cpu or auto"),
    (["--backend", "numpy", "--provider", "cuda"],
     "--backend numpy runs on the CPU only, not --provider cuda; use --backend ort"),
])
def test_command_line_message_names_the_option(no_cuda, tmp_path, monkeypatch, capsys, argv,
                                                said):
    gd_model = tmp_path / "m.onnx"
    gd_model.write_bytes(gd.to_onnx(_graph()).SerializeToString())
    np.save(tmp_path / "x.npy", np.ones(2, np.float32))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "m.onnx", "--feed", "x=x.npy", *argv]) == 2
    err = capsys.readouterr().err
    assert said in err and "provider='" not in err, err
