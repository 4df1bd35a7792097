"""String ops: string_normalizer (ONNX StringNormalizer).

graphdl's string tensors (``DType.string``) are numpy object arrays of Python ``str``. Only ops
with the ``strings`` trait take them (identity, constant, equal and the ops here); any other op
fed a string tensor raises a DTypeError naming itself and the dtype.

string_normalizer removes stopwords and changes case. How many elements survive depends on the
data, so with stopwords the output's length is an unknown dim (``None``: graphdl's fresh,
data-dependent dim, never provably equal to any other). It is not differentiable (strings have
no gradient), so it carries the ``nondiff`` trait; ``passes.grad`` refuses a string ``wrt``.

Locale: graphdl changes case with Python's ``str.lower``/``str.upper`` (the Unicode default case
mapping) whatever the ``locale`` attribute says, so it differs from a locale only in
locale-specific rules (e.g. Turkish dotted/dotless i). A locale the user names is kept and
exported unchanged; none (``""``) exports as ``C.UTF-8``, glibc's locale with exactly the
Unicode default mapping, because onnxruntime's own default (``en_US.UTF-8``) fails to load
where that locale is not installed (minimal Linux images).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..core.builder import Tensor
from ..core.errors import DTypeError, ShapeError
from ..core.registry import OpDef, no_grad, register
from ..core.types import DType, TensorType, shape_str

CASE_ACTIONS = ("NONE", "LOWER", "UPPER")
DEFAULT_EXPORT_LOCALE = "C.UTF-8"


def _normalizer_infer(types: list, attrs: dict) -> list[TensorType]:
    (x,) = types
    if x.dtype != DType.string:
        raise DTypeError(f"string_normalizer takes a string tensor, got {x.dtype.name}")
    if attrs["case_change_action"] not in CASE_ACTIONS:
        raise ShapeError(f"string_normalizer's case_change_action must be one of "
                         f"{list(CASE_ACTIONS)}, got {attrs['case_change_action']!r}")
    if x.shape is None:
        return [TensorType(DType.string, None)]
    if len(x.shape) not in (1, 2) or (len(x.shape) == 2 and x.shape[0] not in (1, None)):
        raise ShapeError(f"string_normalizer takes a [C] or [1, C] tensor, got "
                         f"{shape_str(x.shape)}")
    if not attrs["stopwords"]:
        return [TensorType(DType.string, x.shape)]
    return [TensorType(DType.string, x.shape[:-1] + (None,))]


def _case(words: list[str], action: str) -> list[str]:
    if action == "LOWER":
        return [w.lower() for w in words]
    if action == "UPPER":
        return [w.upper() for w in words]
    return words


def _normalizer_kernel(x: np.ndarray, *, case_change_action: str, is_case_sensitive: int,
                       locale: str, stopwords: Sequence[str]) -> np.ndarray:
    """Drops the elements equal to a stopword (after lower-casing both unless
    is_case_sensitive), then changes the case of the rest; all dropped: one ''."""
    if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[0] != 1):
        raise ValueError(f"string_normalizer takes a [C] or [1, C] tensor, got {list(x.shape)}")
    words = [w.decode("utf-8") if isinstance(w, bytes) else str(w) for w in x.ravel()]
    if is_case_sensitive:
        stops = set(stopwords)
        kept = [w for w in words if w not in stops]
    else:
        stops = {s.lower() for s in stopwords}
        kept = [w for w in words if w.lower() not in stops]
    kept = _case(kept, case_change_action) or [""]
    out = np.empty(len(kept), dtype=object)
    out[:] = kept
    return out.reshape(x.shape[:-1] + (len(kept),))


def _normalizer_lower(ctx: Any, node: Any) -> None:
    """-> StringNormalizer (onnxruntime has a CPU kernel); no locale exports as C.UTF-8 (see the
    module docstring), empty stopwords are left off."""
    a = node.attrs
    ctx.emit("StringNormalizer", node.inputs, node.outputs,
             case_change_action=a["case_change_action"],
             is_case_sensitive=int(a["is_case_sensitive"]),
             locale=a["locale"] or DEFAULT_EXPORT_LOCALE, stopwords=list(a["stopwords"]) or None)


register(OpDef("string_normalizer", _normalizer_infer, (1, 1), kernel=_normalizer_kernel,
               lower=_normalizer_lower, vjp=no_grad,
               attrs={"case_change_action": "NONE", "is_case_sensitive": 0, "locale": "",
                      "stopwords": ()},
               traits={"nondiff", "strings"},
               doc="ONNX StringNormalizer: drop stopwords, then lower/upper-case."))


def string_normalizer(x: Tensor, stopwords: Sequence[str] = (), case_change_action: str = "NONE",
                      is_case_sensitive: bool = False, locale: str = "") -> Tensor:
    """ONNX StringNormalizer of a [C] or [1, C] string tensor: the elements equal to a stopword
    (case-insensitively unless ``is_case_sensitive``) removed, the rest lower-cased
    (``"LOWER"``), upper-cased (``"UPPER"``) or kept (``"NONE"``). If every element is removed
    the result is a single empty string ([1] or [1, 1])."""
    return x.b.apply1("string_normalizer", [x], stopwords=tuple(stopwords),
                      case_change_action=case_change_action,
                      is_case_sensitive=int(is_case_sensitive), locale=locale)
