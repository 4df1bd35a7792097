"""External data: tensors beside a model are read and written only as plain, singly linked files
inside the model's folder. Every attack of the CVE-2022-25882 / CVE-2024-27318 / CVE-2025-51480
class is refused on load and on save; legitimate external data round-trips exactly (checked
against onnxruntime loading the same files)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import graphdl as gd
from graphdl.onnx.external_data import ExternalDataError, save_model
from graphdl.core.limits import ResourceLimitError
from tests.hostile_corpus import external_model, mlp_model

SECRET = np.arange(6, dtype=np.float32) + 100  # what an attacker wants read


def _write_model(folder: Path, location: str, **kw) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / "model.onnx"
    path.write_bytes(external_model(location, **kw).SerializeToString())
    return path


@pytest.fixture
def outside(tmp_path) -> Path:
    """A file outside the model's folder."""
    p = tmp_path / "secret.bin"
    p.write_bytes(SECRET.tobytes())
    return p


def _load_refused(path: Path, match: str) -> None:
    with pytest.raises(ExternalDataError, match=match):
        gd.from_onnx(path)


def test_plain_external_file_loads_and_matches_onnxruntime(tmp_path):
    path = _write_model(tmp_path / "m", "w.bin")
    (tmp_path / "m" / "w.bin").write_bytes(SECRET.tobytes())
    x = np.ones((2, 3), np.float32)
    got = gd.run(gd.from_onnx(path), {"x": x})["y"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(got, sess.run(None, {"x": x})[0])
    np.testing.assert_array_equal(got, x + SECRET.reshape(2, 3))


def test_subfolder_location_is_allowed(tmp_path):
    path = _write_model(tmp_path / "m", "data/w.bin")
    (tmp_path / "m" / "data").mkdir()
    (tmp_path / "m" / "data" / "w.bin").write_bytes(SECRET.tobytes())
    out = gd.run(gd.from_onnx(path), {"x": np.zeros((2, 3), np.float32)})["y"]
    np.testing.assert_array_equal(out, SECRET.reshape(2, 3))


def test_dotdot_traversal_refused(tmp_path, outside):
    _load_refused(_write_model(tmp_path / "m", "../secret.bin"), r"'\.\.'")


def test_absolute_path_refused(tmp_path, outside):
    _load_refused(_write_model(tmp_path / "m", str(outside)), "absolute path")


def test_symlink_to_file_refused(tmp_path, outside):
    path = _write_model(tmp_path / "m", "w.bin")
    os.symlink(outside, tmp_path / "m" / "w.bin")
    _load_refused(path, "symbolic link 'w.bin'")


def test_symlink_through_parent_folder_refused(tmp_path, outside):
    path = _write_model(tmp_path / "m", "sub/secret.bin")
    os.symlink(tmp_path, tmp_path / "m" / "sub")
    _load_refused(path, "symbolic link 'sub'")


def test_hard_link_refused(tmp_path, outside):
    """onnxruntime reads this file; graphdl does not (the bytes may belong to anyone)."""
    path = _write_model(tmp_path / "m", "w.bin")
    os.link(outside, tmp_path / "m" / "w.bin")
    _load_refused(path, "2 hard links")


def test_fifo_refused_without_blocking(tmp_path):
    path = _write_model(tmp_path / "m", "w.bin")
    os.mkfifo(tmp_path / "m" / "w.bin")
    _load_refused(path, "not a regular file")


def test_device_file_refused(tmp_path):
    path = _write_model(tmp_path / "m", "w.bin")
    try:
        os.mknod(tmp_path / "m" / "w.bin", 0o600 | stat.S_IFCHR, os.makedev(1, 5))
    except PermissionError:
        pytest.skip("this user may not create device files (the FIFO test covers non-files)")
    _load_refused(path, "not a regular file")


def test_folder_as_data_refused(tmp_path):
    path = _write_model(tmp_path / "m", "w.bin")
    (tmp_path / "m" / "w.bin").mkdir()
    _load_refused(path, "not a regular file")


@pytest.mark.parametrize("kw,match", [
    ({"offset": 8}, "offset 8 needs 24 bytes, but the file has 24"),
    ({"length": 10 ** 6}, "length 1000000 disagrees"),
    ({"length": 12}, "length 12 disagrees"),
    ({"offset": -4}, "negative"),
])
def test_offsets_and_lengths_outside_the_file_refused(tmp_path, kw, match):
    path = _write_model(tmp_path / "m", "w.bin", **kw)
    (tmp_path / "m" / "w.bin").write_bytes(SECRET.tobytes())
    _load_refused(path, match)


def test_petabyte_claim_refused_before_reading(tmp_path):
    path = _write_model(tmp_path / "m", "w.bin", dims=(2 ** 25, 2 ** 25))
    (tmp_path / "m" / "w.bin").write_bytes(SECRET.tobytes())
    with pytest.raises(ResourceLimitError, match="4.0 PiB"):
        gd.from_onnx(path)


def test_byte_limit_is_an_argument(tmp_path):
    path = _write_model(tmp_path / "m", "w.bin")
    (tmp_path / "m" / "w.bin").write_bytes(SECRET.tobytes())
    with pytest.raises(ResourceLimitError, match="needs 24 bytes .* limit of 16 "):
        gd.from_onnx(path, max_bytes=16)
    assert gd.from_onnx(path, max_bytes=24).inputs[0].name == "x"


# -- saving ------------------------------------------------------------------------------------


def test_save_with_external_data_round_trips(tmp_path):
    model = mlp_model()
    path = tmp_path / "out.onnx"
    save_model(model, str(path), location="weights.bin", threshold=16)
    saved = onnx.load(str(path), load_external_data=False)
    assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in saved.graph.initializer)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = ort.InferenceSession(model.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_array_equal(sess.run(None, {"x": x})[0], want)
    got = gd.run(gd.from_onnx(path), {"x": x})["y"]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert sorted(os.listdir(tmp_path)) == ["out.onnx", "weights.bin"]  # no temp files left


def _save_refused(tmp_path: Path, location: str, match: str) -> None:
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ExternalDataError, match=match):
        save_model(mlp_model(), str(tmp_path / "m" / "out.onnx"), location=location,
                   threshold=16)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # nothing written anywhere, not even the model


@pytest.fixture
def target(tmp_path) -> Path:
    (tmp_path / "m").mkdir()
    return tmp_path


def test_save_refuses_dotdot(target, outside):
    _save_refused(target, "../secret.bin", r"'\.\.'")


def test_save_refuses_absolute(target, outside):
    _save_refused(target, str(outside), "absolute path")


def test_save_refuses_symlinked_target(target, outside):
    os.symlink(outside, target / "m" / "w.bin")
    _save_refused(target, "w.bin", "symbolic link")


def test_save_refuses_symlinked_parent(target, outside):
    os.symlink(target, target / "m" / "sub")
    _save_refused(target, "sub/secret.bin", "symbolic link 'sub'")


def test_save_refuses_hard_linked_target(target, outside):
    os.link(outside, target / "m" / "w.bin")
    _save_refused(target, "w.bin", "hard links")


def test_save_refuses_fifo_target(target):
    os.mkfifo(target / "m" / "w.bin")
    _save_refused(target, "w.bin", "not a regular file")


def test_save_refuses_model_with_unloaded_external_data(tmp_path):
    model = external_model("w.bin")
    with pytest.raises(ExternalDataError, match="still references external data"):
        save_model(model, str(tmp_path / "out.onnx"))
    assert not (tmp_path / "out.onnx").exists()


def test_open_never_follows_a_link_even_if_swapped_in_after_the_checks(tmp_path, outside):
    """The descriptor is opened component by component with O_NOFOLLOW, so a link swapped in
    after safe_location's checks is still refused."""
    from graphdl.onnx.external_data import _open_beneath

    (tmp_path / "m").mkdir()
    os.symlink(tmp_path, tmp_path / "m" / "sub")
    os.symlink(outside, tmp_path / "m" / "w.bin")
    for location in ("sub/secret.bin", "w.bin"):
        with pytest.raises(ExternalDataError, match="without following links"):
            _open_beneath(str(tmp_path / "m"), location, "t")
    (tmp_path / "m" / "ok.bin").write_bytes(b"abc")
    fd = _open_beneath(str(tmp_path / "m"), "ok.bin", "t")
    try:
        assert os.read(fd, 3) == b"abc"
    finally:
        os.close(fd)
