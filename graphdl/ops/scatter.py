"""Scatter-add. PLACEHOLDER: being written."""
from __future__ import annotations


def scatter_add_axis(base, indices, updates, axis):
    raise NotImplementedError
