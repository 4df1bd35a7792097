"""Sample rows: string tensors (string_normalizer, equal and identity on strings) and the
integer dtypes int16, uint16, uint32 and uint64 through the elementwise ops ONNX defines for
them. String inputs are fed as graph inputs (``const=()``), not folded into constants."""
from __future__ import annotations

import numpy as np

from . import Sample


def words(*ws: str) -> np.ndarray:
    out = np.empty(len(ws), dtype=object)
    out[:] = ws
    return out


def ints(dtype, *values: int) -> np.ndarray:
    return np.asarray(values, dtype=dtype)


MONDAY = words("monday", "tuesday", "MONDAY", "Monday", "wednesday")

STRINGS = [
    Sample("string_normalizer", [MONDAY], {"case_change_action": "UPPER"}, const=(),
           grad=False, label="no-stopwords-upper"),
    Sample("string_normalizer", [MONDAY], {"stopwords": ("monday",),
                                           "case_change_action": "LOWER"},
           const=(), grad=False, label="insensitive-lower"),
    Sample("string_normalizer", [MONDAY.reshape(1, -1)],
           {"stopwords": ("monday", "tuesday"), "is_case_sensitive": 1}, const=(), grad=False,
           label="sensitive-2d"),
    Sample("string_normalizer", [words("a", "A")], {"stopwords": ("a",)}, const=(), grad=False,
           label="all-removed"),
    Sample("equal", [words("a", "bc", ""), words("a", "b", "")], const=(), grad=False,
           min_opset=19, label="strings"),
    Sample("identity", [MONDAY.reshape(1, 5)], const=(), grad=False, label="strings"),
]

#: the new integer dtypes: ORT has kernels for each of these (op, dtype) pairs
NEW_INTS = [np.int16, np.uint16, np.uint32, np.uint64]
#: Add/Sub/Mul/Div take int16 and uint16 from opset 14
_ARITH_OPSET = {np.int16: 14, np.uint16: 14}
INTS = [
    row for dt in NEW_INTS for row in (
        Sample("add", [ints(dt, 1, 2, 250), ints(dt, 3, 4, 7)], const=(), grad=False,
               label=np.dtype(dt).name, min_opset=_ARITH_OPSET.get(dt, 0)),
        Sample("sub", [ints(dt, 9, 8, 250), ints(dt, 3, 4, 7)], const=(), grad=False,
               label=np.dtype(dt).name, min_opset=_ARITH_OPSET.get(dt, 0)),
        Sample("mul", [ints(dt, 1, 2, 25), ints(dt, 3, 4, 7)], const=(), grad=False,
               label=np.dtype(dt).name, min_opset=_ARITH_OPSET.get(dt, 0)),
        Sample("div", [ints(dt, 9, 8, 250), ints(dt, 3, 4, 7)], const=(), grad=False,
               label=np.dtype(dt).name, min_opset=_ARITH_OPSET.get(dt, 0)),
        Sample("maximum", [ints(dt, 9, 2, 250), ints(dt, 3, 4, 7)], const=(), grad=False,
               label=np.dtype(dt).name),
        Sample("less", [ints(dt, 9, 2, 7), ints(dt, 3, 4, 7)], const=(), grad=False,
               label=np.dtype(dt).name),
        Sample("equal", [ints(dt, 9, 2, 7), ints(dt, 3, 2, 7)], const=(), grad=False,
               label=np.dtype(dt).name),
        Sample("cast", [ints(dt, 9, 2, 7)], {"to": "float32"}, const=(), grad=False,
               label=np.dtype(dt).name),
    )
]

SAMPLES = STRINGS + INTS
