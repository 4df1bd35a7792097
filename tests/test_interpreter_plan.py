"""The compiled plan's buffer reuse: in-place kernels only where a buffer really dies (views,
repeated operands and graph outputs respected), feeds never written, and the same numbers as
onnxruntime."""
import numpy as np

import graphdl as gd
from graphdl.engine.interpreter import Plan


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _same_as_ort(g, feeds):
    want = gd.run(g, feeds, backend="ort")
    copies = {k: v.copy() for k, v in feeds.items()}
    plan = Plan(g)
    for _ in range(2):  # a second run sees no state left by the first
        got = plan(feeds)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-6, err_msg=k)
    for k in feeds:
        np.testing.assert_array_equal(feeds[k], copies[k], err_msg=f"feed {k} was written")
    return plan


def test_a_view_keeps_its_base_alive():
    """a dies at the add, but its reshape r is read later: a must not be overwritten."""
    b = gd.GraphBuilder("view")
    x = b.input("x", [2, 6])
    a = gd.exp(x)
    r = gd.reshape(a, [3, 4])
    c = a + 1.0
    g = b.build({"y": gd.reshape(c, [3, 4]) * r})
    plan = _same_as_ort(g, {"x": _x(2, 6)})
    assert "out=" not in plan.source  # the add allocates; views are never written


def test_a_dying_buffer_is_reused_and_repeated_operands_are_safe():
    b = gd.GraphBuilder("reuse")
    x, y = b.input("x", ["N", 4]), b.input("y", [4])
    a = gd.exp(x)            # owned by the plan
    c = gd.tanh(a * a + y)   # a dies at the mul (read twice): in place into a
    g = b.build({"c": c, "d": c - 1.0})
    plan = _same_as_ort(g, {"x": _x(3, 4), "y": _x(4, seed=1)})
    assert plan.n_inplace >= 3
    lines = plan.source.splitlines()
    assert any("out=" in line and "k1(" in line for line in lines)  # mul into a's buffer


def test_outputs_and_feeds_are_never_overwritten():
    b = gd.GraphBuilder("outs")
    x = b.input("x", [5])
    a = gd.exp(x)
    g = b.build({"a": a, "b": gd.tanh(a), "c": gd.neg(x)})
    plan = _same_as_ort(g, {"x": _x(5)})
    assert plan.n_inplace == 0  # a is an output, x a feed


def test_one_statement_per_node_and_dead_values_released():
    b = gd.GraphBuilder("lines")
    x = b.input("x", ["N", 3])
    gd.exp(x)  # its value is never read
    g = b.build({"y": gd.relu(gd.tanh(x))})
    src = Plan(g).source.splitlines()
    calls = [line for line in src if " = k" in line]
    assert len(calls) == 3 and any(line.strip().startswith("del v") for line in src)
    dead = calls[0].split(" = ")[0].strip()
    assert f"del {dead}" in src[src.index(calls[0]) + 1]


def _fused_mask_graph(use: str) -> gd.Graph:
    """g * cast(y > 0) (the backprop's ReLU mask) fused into one node; ``use`` "add" makes
    the cast's float feed an add as well, "out" makes the cast the body's result."""
    import passes

    b = gd.GraphBuilder("mask")
    y, g = b.input("y", [4, 5]), b.input("g", [4, 5])
    mask = gd.cast(y > 0.0, "float32")
    out = {"mul": g * mask, "add": g * mask + mask, "out": mask}[use]
    return passes.optimize(b.build({"o": out}))


def test_a_bool_mask_multiplies_without_its_float_copy():
    """The fused body's bool -> float cast is skipped when only multiplies read it (NumPy
    multiplies by the bool array exactly as by its 0/1 floats), kept otherwise."""
    rng = np.random.default_rng(0)
    feeds = {"y": rng.standard_normal((4, 5)).astype(np.float32),
             "g": rng.standard_normal((4, 5)).astype(np.float32)}
    feeds["g"][0, :2] = [np.inf, np.nan]
    m = (feeds["y"] > 0).astype(np.float32)
    want = {"mul": feeds["g"] * m, "add": feeds["g"] * m + m, "out": m}
    for use, elided in (("mul", True), ("add", False), ("out", False)):
        g = _fused_mask_graph(use)
        plan = Plan(g)
        (node,) = [n for n in g.nodes if n.op == "fused_elementwise"]
        j = next(k for k, ins in enumerate(node.attrs["body"]) if ins[0] == "cast")
        step = g.nodes.index(node)
        assert (f"f{step}_{j} = " not in plan.source) == elided, (use, plan.source)
        np.testing.assert_array_equal(plan(feeds)["o"], want[use], err_msg=use)
        assert plan(feeds)["o"].dtype == np.float32


def test_an_unfused_mask_cast_is_a_rename_when_only_float_multiplies_read_it():
    """Plan without passes: cast(y > 0) read only by ``mul`` nodes against a float is passed
    on as the bool array; a cast that another op reads, that is an output, or that meets
    another mask in a mul (bool * bool stays bool) is converted."""
    rng = np.random.default_rng(1)
    y, h = (rng.standard_normal((3, 4)).astype(np.float32) for _ in range(2))
    g = rng.standard_normal((3, 4)).astype(np.float32)
    g[0, 0] = np.nan
    m, k = (y > 0).astype(np.float32), (h < 0).astype(np.float32)
    cases = {  # name -> (outputs from the mask tensors, the reference, casts renamed)
        "mul": (lambda b, gm, mm, km: {"o": gm * mm}, {"o": g * m}, 1),
        "two": (lambda b, gm, mm, km: {"o": gm * mm, "p": mm * 2.0},
                {"o": g * m, "p": m * 2}, 1),
        "add": (lambda b, gm, mm, km: {"o": gm * mm + mm}, {"o": g * m + m}, 0),
        "out": (lambda b, gm, mm, km: {"o": gm * mm, "m": mm}, {"o": g * m, "m": m}, 0),
        "both": (lambda b, gm, mm, km: {"o": mm * km}, {"o": m * k}, 0),
    }
    for name, (make, want, renamed) in cases.items():
        b = gd.GraphBuilder(name)
        yt, ht, gt = b.input("y", [3, 4]), b.input("h", [3, 4]), b.input("g", [3, 4])
        graph = b.build(make(b, gt, gd.cast(yt > 0.0, "float32"), gd.cast(ht < 0.0, "float32")))
        plan = Plan(graph)
        assert len(plan.mask_casts) == renamed, name
        got = plan({"y": y, "h": h, "g": g})
        for key, ref in want.items():
            assert got[key].dtype == np.float32, (name, key)
            np.testing.assert_array_equal(got[key], ref, err_msg=f"{name}: {key}")


def test_writing_into_a_result_never_changes_the_graph():
    """Outputs that are a constant, an initializer or a view of one come back as copies: a
    caller writing into them sees the same values on the next run."""
    b = gd.GraphBuilder("consts")
    x = b.input("x", [2, 3])
    c = b.const(np.arange(6, dtype=np.float32).reshape(2, 3))
    w = b.param("w", np.full((3,), 5.0, np.float32))
    g = b.build({"c": c, "view": gd.reshape(c, [3, 2]), "y": x + c, "w": w,
                 "w2": gd.reshape(w, [1, 3])})
    plan = Plan(g)
    feeds = {"x": np.zeros((2, 3), np.float32)}
    first = plan(feeds)
    for k in first:
        first[k][...] = -7.0
    again = plan(feeds)
    want = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(again["c"], want)
    np.testing.assert_array_equal(again["view"], want.reshape(3, 2))
    np.testing.assert_array_equal(again["y"], want)
    np.testing.assert_array_equal(again["w"], np.full((3,), 5.0, np.float32))
    np.testing.assert_array_equal(again["w2"], np.full((1, 3), 5.0, np.float32))
    assert plan.source.count("_copy(") == 4  # y is the plan's own array: not copied
