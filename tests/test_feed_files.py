"""``graphdl run --feed`` takes .npy files and .npz archives (what ``run -o`` writes), and says
so in its help; outputs are checked against NumPy."""
from __future__ import annotations

import numpy as np
import pytest

import graphdl as gd
from graphdl.tools import cli


def _save(path, build) -> None:
    b = gd.GraphBuilder("m")
    path.write_bytes(gd.to_onnx(build(b)).SerializeToString())


@pytest.fixture
def work(tmp_path, monkeypatch):
    _save(tmp_path / "first.onnx", lambda b: b.build({"h": gd.exp(b.input("x", [3])),
                                                       "n": gd.neg(b.input("z", [3]))}))
    _save(tmp_path / "second.onnx", lambda b: b.build({"y": b.input("h", [3]) * 2.0
                                                       + b.input("n", [3])}))
    monkeypatch.chdir(tmp_path)
    return tmp_path


X = np.array([0.0, 1.0, -2.0], np.float32)
Z = np.array([3.0, -1.0, 0.5], np.float32)


def test_outputs_of_one_run_feed_the_next(work):
    np.savez(work / "in.npz", x=X, z=Z)
    assert cli.main(["run", "first.onnx", "--feed", "in.npz", "-o", "mid.npz"]) == 0
    assert cli.main(["run", "second.onnx", "--feed", "mid.npz", "-o", "out.npz"]) == 0
    np.testing.assert_allclose(np.load(work / "out.npz")["y"], np.exp(X) * 2 - Z, rtol=1e-6)


def test_name_picks_from_an_archive_or_takes_its_only_array(work):
    np.savez(work / "both.npz", x=X, other=Z)
    np.savez(work / "one.npz", anything=Z)
    argv = ["run", "first.onnx", "--feed", "x=both.npz", "--feed", "z=one.npz", "-o", "o.npz"]
    assert cli.main(argv) == 0
    got = np.load(work / "o.npz")
    np.testing.assert_allclose(got["h"], np.exp(X), rtol=1e-6)
    np.testing.assert_array_equal(got["n"], -Z)


@pytest.mark.parametrize("feeds,said", [
    (["z=both.npz", "--feed", "x=both.npz"], "the archive has no array 'z'; it has ['other', 'x']"),
    (["both.npz", "--feed", "x=x.npy"], "--feed 'x' is given twice"),
    (["x.npz"], "x.npz: No such file"),
])
def test_bad_archive_feeds_are_one_line(work, capsys, feeds, said):
    np.savez(work / "both.npz", x=X, other=Z)
    np.save(work / "x.npy", X)
    assert cli.main(["run", "first.onnx", "--feed", *feeds]) == 2
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1, err


def test_help_says_what_feed_takes(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "NAME=PATH.npy feeds input NAME" in text and "PATH.npz every array" in text
