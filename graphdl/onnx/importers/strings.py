"""Importers of string ops: StringNormalizer."""
from __future__ import annotations

from ... import ops
from ...core.builder import Tensor
from ..importer import NodeCtx
from . import importer


@importer("StringNormalizer")
def _string_normalizer(c: NodeCtx) -> Tensor:
    return ops.string_normalizer(c.x(0), stopwords=tuple(c.attr("stopwords", ())),
                                 case_change_action=c.attr("case_change_action", "NONE"),
                                 is_case_sensitive=bool(c.attr("is_case_sensitive", 0)),
                                 locale=c.attr("locale", ""))
