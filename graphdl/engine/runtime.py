"""One entry to run a graph: graphdl's NumPy interpreter or ONNX Runtime (CPU or CUDA)."""
from __future__ import annotations

import weakref
from typing import Any, Mapping

import numpy as np

from ..core.errors import GraphError
from ..core.feeds import check_feeds
from .interpreter import Plan
from ..core.limits import DEFAULT_MAX_BYTES, check_graph
from ..core.ir import Graph

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}


class ProviderError(GraphError):
    """An execution provider that this machine's onnxruntime does not have."""


class OrtRunError(GraphError):
    """onnxruntime refused to load or run a graph (e.g. sizes that only the data reveals)."""


_plans: "weakref.WeakKeyDictionary[Graph, Plan]" = weakref.WeakKeyDictionary()
_sessions: "weakref.WeakKeyDictionary[Graph, dict]" = weakref.WeakKeyDictionary()


def ort_providers(provider: str) -> list[str]:
    """The onnxruntime provider list for 'cpu', 'cuda' or 'auto' (CUDA if present, else CPU)."""
    import onnxruntime as ort

    have = ort.get_available_providers()
    if provider == "auto":
        return [PROVIDERS["cuda"], PROVIDERS["cpu"]] if PROVIDERS["cuda"] in have \
            else [PROVIDERS["cpu"]]
    if provider not in PROVIDERS:
        raise ProviderError(f"unknown provider {provider!r}; expected cpu, cuda or auto")
    if PROVIDERS[provider] not in have:
        raise ProviderError(f"onnxruntime has no {PROVIDERS[provider]} here (available: "
                            f"{', '.join(have)}); use --provider cpu or auto")
    return [PROVIDERS[provider]]


def ort_session(graph: Graph, provider: str = "cpu"):
    """An onnxruntime InferenceSession for ``graph``, cached per graph and provider."""
    import onnxruntime as ort

    from ..onnx.export import to_onnx

    cache = _sessions.setdefault(graph, {})
    if provider not in cache:
        opts = ort.SessionOptions()
        opts.log_severity_level = 4  # errors arrive as exceptions (one line at the CLI)
        cache[provider] = ort.InferenceSession(to_onnx(graph).SerializeToString(), opts,
                                               providers=ort_providers(provider))
    return cache[provider]


def run(graph: Graph, feeds: Mapping[str, Any], backend: str = "numpy",
        provider: str = "cpu", max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, np.ndarray]:
    """Runs ``graph`` on ``feeds`` and returns its outputs by name. A graph with a statically
    shaped value over ``max_bytes`` is refused when it is first planned; in the interpreter, an
    output whose size comes from run-time values is refused before it is allocated."""
    if backend == "numpy":
        if provider not in ("cpu", "auto"):
            raise ProviderError(f"the numpy backend runs on the CPU only, not {provider!r}")
        plan = _plans.get(graph)
        if plan is None or plan.max_bytes != max_bytes:
            check_graph(graph, max_bytes)  # refused before anything is allocated
            plan = _plans[graph] = Plan(graph, max_bytes=max_bytes)
        return plan(feeds)
    if backend == "ort":
        arrays = check_feeds(graph.inputs, feeds)
        if graph not in _sessions:
            check_graph(graph, max_bytes)
        names = [v.name for v in graph.outputs]
        try:
            return dict(zip(names, ort_session(graph, provider).run(names, arrays)))
        except Exception as e:  # noqa: BLE001 - onnxruntime's own error types, re-raised below
            if not type(e).__module__.startswith("onnxruntime"):
                raise
            raise OrtRunError(f"onnxruntime cannot run graph {graph.name!r}: "
                              f"{' '.join(str(e).split())}") from None
    raise GraphError(f"unknown backend {backend!r}; expected 'numpy' or 'ort'")
