"""Pictures of forward and gradient graphs: DOT text, the layout of the pure-Python drawing,
and PNGs drawn without Graphviz, checked by their pixels."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import graphdl as gd
import passes
from graphdl.tools import viz
from graphdl.tools import viz_layout

pytest.importorskip("matplotlib")
ROOT = Path(__file__).resolve().parent.parent


def mlp_grad_graph() -> tuple[gd.Graph, gd.Graph]:
    """A 2-layer MLP's training graph and its gradient graph w.r.t. every parameter."""
    rng = np.random.default_rng(0)
    b = gd.GraphBuilder("mlp2")
    x, y = b.input("x", ["N", 4]), b.input("y", ["N"], "int64")
    w1 = b.param("w1", rng.standard_normal((4, 5)).astype(np.float32))
    b1 = b.param("b1", np.zeros(5, np.float32))
    w2 = b.param("w2", rng.standard_normal((5, 3)).astype(np.float32))
    h = gd.relu(x @ w1 + b1)
    g = b.build({"loss": gd.softmax_cross_entropy(h @ w2, y)})
    return g, passes.grad(g, "loss", ["w1", "b1", "w2"])


def test_layout_draws_every_node_and_value_once_coloured_by_kind():
    g, gg = mlp_grad_graph()
    items, edges = viz.layout(gg)
    want = {n.name for n in gg.nodes} | {f"value:{v.name}" for v in (*gg.inputs, *gg.initializers)}
    want |= {f"output:{v.name}" for v in gg.outputs}
    assert set(items) == set(want)
    for n in gg.nodes:
        d = items[n.name]
        assert (d.kind, d.color) == (("gradient", viz.GRADIENT_COLOR) if n.grad_of
                                     else ("forward", viz.FORWARD_COLOR))
        assert d.grad_of == n.grad_of
        named = [n.op] if n.grad_of else [n.name, n.op]  # forward boxes carry their names
        assert d.label.splitlines() == named + [str(v.type) for v in n.outputs]
    n_edges = sum(v is not None for n in gg.nodes for v in n.inputs) + len(gg.outputs)
    assert len(edges) == n_edges


def test_layout_stacks_gradient_frames_below_and_edges_downward():
    g, gg = mlp_grad_graph()
    items, edges = viz.layout(gg)
    fwd_y = [d.xy[1] for d in items.values() if d.kind == "forward"]
    grad_y = [d.xy[1] for d in items.values() if d.kind == "gradient"]
    assert min(fwd_y) > max(grad_y)  # the backward half is drawn below, top to bottom
    spans = {}
    for d in items.values():
        if d.kind == "gradient":
            lo, hi = spans.get(d.grad_of, (d.xy[1], d.xy[1]))
            spans[d.grad_of] = (min(lo, d.xy[1]), max(hi, d.xy[1]))
    assert set(spans) == {n.grad_of for n in gg.nodes if n.grad_of}
    ordered = sorted(spans.values())
    assert all(a[1] < b[0] for a, b in zip(ordered, ordered[1:]))  # frames never overlap
    # backprop order: the loss's frame first (highest), the first layer's last
    order = sorted(spans, key=lambda f: -spans[f][1])
    fwd_pos = {n.name: i for i, n in enumerate(gg.nodes) if n.grad_of is None}
    assert [fwd_pos[f] for f in order] == sorted(fwd_pos[f] for f in order)[::-1]
    for a, b in edges:
        assert items[a].xy[1] > items[b].xy[1]  # every edge points down a row or more


def test_no_line_crosses_the_picture():
    """Forward values read by gradient nodes, and edges over many rows, are tags naming the
    source; every line drawn is short."""
    g, gg = mlp_grad_graph()
    items, edges = viz.layout(gg)
    lines = [(items[a], items[b]) for a, b in edges if not viz_layout.is_long(items[a], items[b])]
    tags = [(items[a], items[b]) for a, b in edges if viz_layout.is_long(items[a], items[b])]
    assert all(a.xy[1] - b.xy[1] <= viz_layout.LONG_EDGE_ROWS for a, b in lines)
    assert not [(a, b) for a, b in lines if a.grad_of is None and b.kind == "gradient"]
    read = {(viz_layout.tag_name(a), b.key) for a, b in tags}
    want = {(v.name, n.name) for n in gg.nodes if n.grad_of for v in n.inputs
            if v is not None and (v not in gg.producers or gg.producers[v].grad_of is None)}
    assert want <= read


def _colour_mask(img: np.ndarray, hex_colour: str) -> np.ndarray:
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255.0
    return np.all(np.abs(img[..., :3] - rgb) < 0.02, axis=-1)


def check_png(path: Path, max_width: int = 1100) -> None:
    """Blue forward boxes above, orange gradient boxes below, nothing between; narrow enough
    to read at 1000 px (the text is drawn at its natural size, never scaled down)."""
    import matplotlib.image

    img = matplotlib.image.imread(str(path))
    fwd, grad = _colour_mask(img, viz.FORWARD_COLOR), _colour_mask(img, viz.GRADIENT_COLOR)
    assert fwd.sum() > 500 and grad.sum() > 500
    # rows crossing a box's fill (a few antialiased pixels of tag text may match a colour)
    fwd_rows, grad_rows = np.nonzero(fwd.sum(1) > 15)[0], np.nonzero(grad.sum(1) > 15)[0]
    assert fwd_rows.max() < grad_rows.min()
    assert img.shape[1] <= max_width, img.shape


def test_png_without_graphviz_shows_forward_and_gradient_apart(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    g, gg = mlp_grad_graph()
    assert viz.render(gg, str(tmp_path / "g.png")) == "matplotlib"
    check_png(tmp_path / "g.png")
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]  # no temp file left behind


def test_cli_viz_grad_png_on_the_example_without_graphviz(tmp_path):
    """The issue's demand: `graphdl viz examples/...:model --grad -o g.png` with no `dot`."""
    env = {"PATH": str(Path(sys.executable).parent), "MPLBACKEND": "Agg",
           "HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}  # this checkout's graphdl
    r = subprocess.run([sys.executable, "-m", "graphdl", "viz",
                        str(ROOT / "examples" / "mlp_digits.py:loss_model"), "--grad",
                        "-o", "g.png"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert "(matplotlib)" in r.stdout and "9 forward nodes" in r.stdout
    check_png(tmp_path / "g.png")


def test_svg_fallback_is_svg(tmp_path, monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    g, _ = mlp_grad_graph()
    g.to_dot()
    viz.render(g, str(tmp_path / "f.svg"))
    root = ET.parse(tmp_path / "f.svg").getroot()
    assert root.tag.endswith("svg")


def test_to_dot_labels_ops_with_output_types_and_clusters_by_forward_node():
    g, gg = mlp_grad_graph()
    dot = gg.to_dot()
    assert dot == viz.to_dot(gg)
    assert dot.count(viz.GRADIENT_COLOR) == sum(n.grad_of is not None for n in gg.nodes)
    mm = next(n for n in gg.nodes if n.op == "matmul" and n.grad_of is None)  # x @ w1
    assert f'label="{mm.name}\\nmatmul\\nf32[N,5]"' in dot
    assert 'label="w1_grad\\nf32[4,5]", shape=ellipse, peripheries=2' in dot
    clusters = dot.count("subgraph cluster_grad")
    assert clusters == len({n.grad_of for n in gg.nodes if n.grad_of})
    assert f'label="grad of {mm.name} (matmul)"' in dot
    assert "rankdir=TB" in dot and "forward nodes (blue), then gradient nodes" in dot
    assert "gradient" not in viz.to_dot(g).split("\n")[2]  # a forward graph's title


def test_graphviz_engine_refused_without_dot(monkeypatch):
    monkeypatch.setattr(viz.shutil, "which", lambda name: None)
    g, _ = mlp_grad_graph()
    with pytest.raises(gd.GraphError, match="Graphviz's dot is not installed"):
        viz.render_bytes(g, "svg", engine="graphviz")
    with pytest.raises(gd.GraphError, match="g.jpg: cannot tell the picture format"):
        viz.picture_format("g.jpg")


@pytest.mark.skipif(not viz.has_graphviz(), reason="Graphviz's dot is not installed")
def test_graphviz_svg_names_every_cluster():
    g, gg = mlp_grad_graph()
    svg = viz.render_bytes(gg, "svg", engine="graphviz").decode()
    for fwd in {n.grad_of for n in gg.nodes if n.grad_of}:
        assert f"grad of {fwd}" in svg


def test_to_networkx_carries_op_shape_and_dtype():
    g, gg = mlp_grad_graph()
    nxg = gg.to_networkx()
    for n in gg.nodes:
        attrs = nxg.nodes[n.name]
        assert (attrs["op"], attrs["grad_of"]) == (n.op, n.grad_of)
        assert attrs["shape"] == n.outputs[0].type.shape
        assert attrs["dtype"] == n.outputs[0].type.dtype.name
    prod = gg.producers
    want = {(prod[v].name, n.name) for n in gg.nodes for v in n.inputs if v in prod}
    assert set(nxg.edges) == want


def _three_layer_mlp_grad() -> gd.Graph:
    """The README's picture: examples/mlp_digits.py's 3-layer MLP and its gradient graph."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("mlp_digits", ROOT / "examples" / "mlp_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    g = module.loss_model()
    return passes.grad(g, "loss", [v.name for v in g.initializers])


@pytest.mark.parametrize("engine", ["matplotlib", "graphviz"])
def test_three_layer_mlp_picture_reads_at_1000_px(engine, tmp_path, monkeypatch):
    if engine == "graphviz" and not viz.has_graphviz():
        pytest.skip("Graphviz's dot is not installed")
    gg = _three_layer_mlp_grad()
    viz.render(gg, str(tmp_path / "g.png"), engine=engine)
    check_png(tmp_path / "g.png")


@pytest.mark.parametrize("engine", ["matplotlib", "graphviz"])
def test_pdf_output(engine, tmp_path):
    if engine == "graphviz" and not viz.has_graphviz():
        pytest.skip("Graphviz's dot is not installed")
    g, gg = mlp_grad_graph()
    assert viz.render(gg, str(tmp_path / "g.pdf"), engine=engine) == engine
    data = (tmp_path / "g.pdf").read_bytes()
    assert data.startswith(b"%PDF-") and b"%%EOF" in data[-64:]


def test_titles_say_what_is_drawn():
    g, gg = mlp_grad_graph()
    assert viz_layout.title(g) == "mlp2: forward graph"
    assert "gradient nodes (orange)" in viz_layout.title(gg)
