"""Slicing (ONNX Slice). PLACEHOLDER: being written."""
from __future__ import annotations


def slice_(x, starts, ends, axes=None, steps=None):
    raise NotImplementedError
