"""What a file that is not an ONNX model probably is, for the error that refuses it.

A protobuf parser says only "Wire format was corrupt" about a PyTorch checkpoint; a user who
passed ``model.pt`` needs to hear that it is a checkpoint and how to get an ONNX model from it.
The first bytes of the common model formats are enough to tell.
"""
from __future__ import annotations

#: (leading bytes, offset, what the file is, what to do)
_MAGIC = [
    (b"PK\x03\x04", 0, "a zip archive (a PyTorch checkpoint saved by torch.save, or a .npz)",
     "export the model with torch.onnx.export(model, example_input, 'model.onnx') and pass "
     "that file"),
    (b"\x80", 0, "a Python pickle (a PyTorch checkpoint from an old torch.save, or joblib)",
     "export the model with torch.onnx.export(model, example_input, 'model.onnx') and pass "
     "that file"),
    (b"\x89HDF", 0, "an HDF5 file (a Keras .h5 model)",
     "convert it with tf2onnx (python -m tf2onnx.convert --keras model.h5)"),
    (b"TFL3", 4, "a TensorFlow Lite model", "convert it with tf2onnx (--tflite model.tflite)"),
    (b"\x93NUMPY", 0, "a NumPy .npy array", "pass it as a feed: --feed NAME=FILE.npy"),
]


def describe(path: str) -> str | None:
    """'PATH is ...; do ...' for a file whose first bytes match a known non-ONNX format."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    for magic, offset, what, fix in _MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return f"{path} is not an ONNX model but {what}; {fix}"
    if len(head) >= 9 and head[8:9] == b"{" and path.endswith(".safetensors"):
        return (f"{path} is not an ONNX model but safetensors weights; export the model that "
                "uses them to ONNX")
    return None
