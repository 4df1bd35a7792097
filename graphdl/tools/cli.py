"""The ``graphdl`` command: inspect, export, run and differentiate models from the shell.

Exit codes: 0 on success, 2 for bad usage or bad input (one line on stderr naming the file,
node or option at fault, never a traceback), 1 for an internal error (with its traceback, so it
can be reported). Output files are written atomically: a reader never sees half a file.

The command line is the application on top of both packages, so it is the one module of
graphdl that imports ``passes`` (lazily, for ``grad``, ``explain``, ``viz --grad`` and
``inspect --passes``); the library itself never does.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
import traceback
import zipfile
from typing import IO, Any, Callable, Sequence

import numpy as np

from ..core.builder import in_library
from ..core.errors import GraphError, UnsupportedOpError
from ..core.fileio import write_atomic
from ..core.ir import Graph

_PY_SPEC = re.compile(r"^(?P<path>.+\.py)(?::(?P<name>[A-Za-z_][A-Za-z0-9_]*))?$")


class UserError(Exception):
    """Bad usage or bad input: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2), as every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# -- loading models ----------------------------------------------------------------------------


def load_model(spec: str, lengths: Sequence[tuple[str, int]] = ()) -> Graph:
    """A graph from an ``.onnx`` file or ``FILE.py[:NAME]`` (NAME() returns a Graph), with any
    gradient request (ONNX Gradient) expanded into its backprop graph; ``lengths`` are the
    ``--sequence-length`` items, the lengths of an ONNX model's sequence inputs."""
    m = _PY_SPEC.match(spec)
    if m and lengths:
        raise UserError("--sequence-length is for the sequence inputs of .onnx models")
    if m:
        graph = load_python_graph(m["path"], m["name"] or "model")
    else:
        from ..onnx.importer import from_onnx

        if len(dict(lengths)) < len(lengths):
            raise UserError("--sequence-length names an input twice")
        graph = from_onnx(spec, sequence_lengths=dict(lengths))
    if any(n.op == "gradient" for n in graph.nodes):
        from passes import expand_gradients

        graph = expand_gradients(graph)
    return graph


def load_python_graph(path: str, name: str) -> Graph:
    """Runs ``path`` as a module and calls its function ``name``; errors in the user's code are
    user errors, errors inside graphdl are internal ones."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    mod_name = "_graphdl_user_" + re.sub(r"\W", "_", os.path.splitext(os.path.basename(path))[0])
    spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickling look modules up there
    folder = os.path.dirname(os.path.abspath(path))
    sys.path.insert(0, folder)  # the user's file may import its neighbours
    try:
        _call_user(path, lambda: spec.loader.exec_module(module))
        fn = getattr(module, name, None)
        if not callable(fn):
            raise UserError(f"{path}: has no function {name!r} (use FILE.py:NAME to pick one)")
        graph = _call_user(f"{path}:{name}()", fn)
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    if not isinstance(graph, Graph):
        raise UserError(f"{path}:{name}() returned {type(graph).__name__}, not a graphdl Graph "
                        "(return builder.build(outputs))")
    return graph


def _call_user(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except (GraphError, UserError):
        raise
    except Exception as e:
        if _raised_in_graphdl(e):
            raise
        raise UserError(f"{what} raised {type(e).__name__}: {e}") from None


def _raised_in_graphdl(e: BaseException) -> bool:
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and in_library(tb.tb_frame.f_code.co_filename)


# -- writing files -----------------------------------------------------------------------------


def _write_bytes(path: str, data: bytes) -> None:
    write_atomic(path, lambda f: f.write(data))


# -- commands ----------------------------------------------------------------------------------


def cmd_inspect(args: argparse.Namespace) -> None:
    from ..core.printing import format_node
    from ..core.summary import summarize

    try:
        g = load_model(args.model, args.sequence_length)
    except UnsupportedOpError as e:  # still show the rest of the model, then the error
        print_listing(e, args.json)
        raise
    if args.passes:
        return print_pass_trace(g)
    if args.json:
        print(json.dumps(summarize(g).to_dict(), indent=1))
        return
    out = [f"graph {g.name}  ({args.model})", "inputs:"]
    out += [f"  %{v.name}: {v.type}" for v in g.inputs] or ["  (none)"]
    out.append("outputs:")
    out += [f"  %{v.name}: {v.type}" for v in g.outputs]
    for key in ("graphdl.sequence_inputs", "graphdl.sequence_outputs"):
        for name, parts in json.loads(g.metadata.get(key, "{}")).items():
            kind = key.removeprefix("graphdl.").replace("_", " ")[:-1]
            out.append(f"{kind} {name!r} as tensors: {', '.join(parts) or '(none)'}")
    out.append(f"nodes ({len(g.nodes)}):")
    out += [f"  {format_node(n)}" for n in g.nodes]
    out.append(f"parameters ({len(g.initializers)} tensors):")
    out += [f"  %{v.name}: {v.type}" for v in g.initializers]
    out.append(f"parameter count: {g.param_count()}")
    out += ["", str(summarize(g))]
    print("\n".join(out))


def print_listing(e: UnsupportedOpError, as_json: bool) -> None:
    """The ONNX model's own listing (inputs, outputs, parameters, every node with the
    unsupported ones marked), for a model graphdl cannot import."""
    from ..onnx.listing import format_listing, model_listing

    if e.proto is None:
        return
    listing = model_listing(e.proto, e.nodes)  # type: ignore[arg-type]
    print(json.dumps(listing, indent=1) if as_json else format_listing(listing), flush=True)


def print_pass_trace(g: Graph) -> None:
    """``inspect --passes``: the default pipeline's per-pass trace, then the optimised graph
    (the CLI, not graphdl, drives the passes)."""
    from passes import PassManager, default_pipeline

    from ..core.printing import format_node

    pm = PassManager(default_pipeline())
    out = pm.run(g).graph
    print(f"graph {g.name}: {len(g.nodes)} nodes -> {len(out.nodes)} after the default pipeline")
    print(pm.format_trace())
    print(f"optimised nodes ({len(out.nodes)}):")
    print("\n".join(f"  {format_node(n)}" for n in out.nodes))


def cmd_export(args: argparse.Namespace) -> None:
    import onnx

    from ..onnx.export import to_onnx

    model = to_onnx(load_model(args.model, args.sequence_length), args.opset)
    onnx.checker.check_model(model, full_check=True)
    _write_bytes(args.output, model.SerializeToString())
    print(f"wrote {args.output} (opset {model.opset_import[0].version}, "
          f"{len(model.graph.node)} ONNX nodes)")


def parse_feeds(items: Sequence[str]) -> dict[str, np.ndarray]:
    """``NAME=PATH.npy`` items -> arrays by name."""
    feeds: dict[str, np.ndarray] = {}
    for item in items:
        name, eq, path = item.partition("=")
        if not eq or not name or not path:
            raise UserError(f"--feed {item!r}: expected NAME=PATH.npy")
        if name in feeds:
            raise UserError(f"--feed {name!r} is given twice")
        feeds[name] = _load_npy(name, path)
    return feeds


def _load_npy(name: str, path: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except OSError as e:
        raise UserError(f"--feed {name}: {path}: {e.strerror or e}") from None
    except ValueError as e:
        why = "" if "pickle" in str(e) else f" ({e})"
        raise UserError(f"--feed {name}: {path} is not a .npy array file{why}") from None
    if not isinstance(arr, np.ndarray):
        raise UserError(f"--feed {name}: {path} holds several arrays (.npz); give one .npy file")
    return arr


def write_npz(f: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    """``numpy.savez`` without its keyword arguments, so any output name (even ``file``) works."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)


def cmd_run(args: argparse.Namespace) -> None:
    from ..engine.runtime import run

    feeds = parse_feeds(args.feed)
    g = load_model(args.model, args.sequence_length)
    backend = args.backend or ("numpy" if args.provider == "cpu" else "ort")
    if args.check_numerics:
        from ..engine.numerics import check_numerics

        check_numerics(g, feeds, backend, args.provider)
    outs = run(g, feeds, backend=backend, provider=args.provider)
    if args.output:
        write_atomic(args.output, lambda f: write_npz(f, outs))
    for name, arr in outs.items():
        arr = np.asarray(arr)
        print(f"{name}: {arr.dtype}{list(arr.shape)}" +
              (f" = {np.array2string(arr, threshold=8)}" if arr.size <= 8 else ""))
    if args.output:
        print(f"wrote {args.output}")


def pick_loss(g: Graph, name: str | None) -> str:
    """The loss output: ``name``, else the graph's only scalar float output."""
    if name is not None:
        if name not in {v.name for v in g.outputs}:
            raise UserError(f"--loss {name!r} is not an output of the model; its outputs are "
                            f"{[v.name for v in g.outputs]}")
        return name
    floats = [v for v in g.outputs if v.type.dtype.is_float]
    scalars = [v for v in floats if v.type.shape is not None and
               all(d == 1 for d in v.type.shape)]
    if len(scalars) == 1:
        return scalars[0].name
    if len(scalars) > 1:
        raise UserError(f"the model has several scalar float outputs "
                        f"{[v.name for v in scalars]}; pick the loss with --loss NAME")
    if len(floats) == 1:
        return floats[0].name  # not a scalar: passes.grad says so, naming its shape
    raise UserError(f"the model has no scalar float output to use as the loss; its outputs are "
                    f"{[f'{v.name}: {v.type}' for v in g.outputs]}")


def pick_wrt(g: Graph, text: str | None) -> list[str]:
    """``--wrt a,b`` (graph inputs or initializers), else every float initializer."""
    if text is None:
        names = [v.name for v in g.initializers if v.type.dtype.is_float]
        if not names:
            raise UserError("the model has no floating-point initializer to differentiate; "
                            "name inputs with --wrt")
        return names
    names = [n.strip() for n in text.split(",") if n.strip()]
    leaves = {v.name for v in g.inputs} | {v.name for v in g.initializers}
    for n in names:
        if n not in leaves:
            raise UserError(f"--wrt {n!r} is neither a graph input nor an initializer; inputs: "
                            f"{[v.name for v in g.inputs]}, initializers: "
                            f"{[v.name for v in g.initializers]}")
    if not names:
        raise UserError("--wrt names no value")
    return names


def cmd_grad(args: argparse.Namespace) -> None:
    # The command line is the one place in graphdl that drives the compiler passes.
    from passes import grad

    from ..onnx.export import to_onnx

    g = load_model(args.model, args.sequence_length)
    loss, wrt = pick_loss(g, args.loss), pick_wrt(g, args.wrt)
    gg = grad(g, loss, wrt)
    model = to_onnx(gg, args.opset)
    _write_bytes(args.output, model.SerializeToString())
    if args.dot:
        from .viz import to_dot

        _write_bytes(args.dot, to_dot(gg).encode("utf-8"))
    print(f"wrote {args.output}: d {loss} / d {', '.join(wrt)} "
          f"(outputs {', '.join(v.name for v in gg.outputs)})")


def grad_graph_for(g: Graph, loss: str | None, wrt: list[str]) -> Graph:
    """The gradient graph of ``g`` (the CLI, not graphdl, drives the passes)."""
    from passes import grad

    return grad(g, pick_loss(g, loss), wrt)


def cmd_viz(args: argparse.Namespace) -> None:
    from .viz import picture_format, render

    picture_format(args.output)  # a bad extension fails before any work
    if args.wrt and not args.grad:
        raise UserError("--wrt picks what --grad differentiates; add --grad")
    g = load_model(args.model, args.sequence_length)
    if args.grad:
        g = grad_graph_for(g, args.loss, pick_wrt(g, args.wrt))
    engine = render(g, args.output, args.engine)
    n_grad = sum(n.grad_of is not None for n in g.nodes)
    print(f"wrote {args.output} ({engine}): {len(g.nodes) - n_grad} forward nodes, "
          f"{n_grad} gradient nodes")


def cmd_explain(args: argparse.Namespace) -> None:
    from .explain import explain

    g = load_model(args.model, args.sequence_length)
    names = [n.strip() for n in args.wrt.split(",") if n.strip()]
    for name in names or [args.wrt]:
        if name not in g.by_name:
            raise UserError(f"--wrt {name!r} is not a value of the model; its inputs are "
                            f"{[v.name for v in g.inputs]}, its parameters "
                            f"{[v.name for v in g.initializers]}")
    loss = pick_loss(g, args.loss)
    gg = grad_graph_for(g, loss, names)
    print(explain(g, loss, names, grad_graph=gg), end="")


# -- entry point -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="graphdl", description="Inspect, export, run and differentiate models.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    model_help = "an .onnx file or FILE.py[:NAME] (NAME() returns a graphdl Graph; default model)"
    s = sub.add_parser("inspect", help="print inputs, outputs, nodes with types, parameters")
    s.add_argument("model", help=model_help)
    s.add_argument("--json", action="store_true",
                   help="print the summary table (nodes, shapes, params, FLOPs) as JSON")
    s.add_argument("--passes", action="store_true",
                   help="run the default pass pipeline and print what each pass did")
    s.set_defaults(func=cmd_inspect)
    s = sub.add_parser("export", help="write a Python-defined graph as ONNX")
    s.add_argument("model", help=model_help)
    s.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    s.add_argument("--opset", type=int, default=None, help="ONNX opset (default: graphdl's)")
    s.set_defaults(func=cmd_export)
    s = sub.add_parser("run", help="run a model on .npy feeds")
    s.add_argument("model", help=model_help)
    s.add_argument("--feed", action="append", default=[], metavar="NAME=PATH.npy")
    s.add_argument("--backend", choices=["numpy", "ort"],
                   help="numpy (graphdl's interpreter; the default on the CPU) or ort")
    s.add_argument("--provider", choices=["cpu", "cuda", "auto"], default="cpu")
    s.add_argument("-o", "--output", help="write every output into this .npz, by name")
    s.add_argument("--check-numerics", action="store_true",
                   help="fail (exit 2) naming the first node that produces NaN or Inf")
    s.set_defaults(func=cmd_run)
    s = sub.add_parser("grad", help="write the gradient graph of a scalar loss as ONNX")
    s.add_argument("model", help=model_help)
    s.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    s.add_argument("--loss", help="the loss output (default: the only scalar float output)")
    s.add_argument("--wrt", help="comma-separated inputs/initializers (default: all float "
                                 "initializers)")
    s.add_argument("--dot", help="also write the gradient graph as Graphviz DOT")
    s.add_argument("--opset", type=int, default=None, help="ONNX opset (default: graphdl's)")
    s.set_defaults(func=cmd_grad)
    _add_inspection_commands(sub, model_help)
    for s in sub.choices.values():  # every command loads a model
        s.add_argument("--sequence-length", action="append", default=[], type=_length_item,
                       metavar="NAME=N", help="an .onnx model's sequence input NAME holds N "
                       "tensors, given as inputs NAME.0 ... NAME.(N-1)")
    from .train_command import add_train_command

    add_train_command(sub)  # loads a training step, not a model
    return p


def _add_inspection_commands(sub: Any, model_help: str) -> None:
    """``viz`` and ``explain``: pictures of forward/gradient graphs and the backprop recursion."""
    s = sub.add_parser("viz", help="draw the graph (with --grad: and its gradient graph)")
    s.add_argument("model", help=model_help)
    s.add_argument("-o", "--output", required=True, help="the .svg, .png or .dot file to write")
    s.add_argument("--grad", action="store_true",
                   help="draw the gradient graph: forward nodes and, apart, gradient nodes "
                        "grouped by the forward node each came from")
    s.add_argument("--wrt", help="with --grad: comma-separated inputs/initializers (default: "
                                 "all float initializers)")
    s.add_argument("--loss", help="with --grad: the loss output (default: the only scalar)")
    s.add_argument("--engine", choices=["auto", "graphviz", "matplotlib"], default="auto",
                   help="auto: Graphviz's dot when installed, else matplotlib")
    s.set_defaults(func=cmd_viz)
    s = sub.add_parser("explain", help="show how the backprop recursion assembles a gradient")
    s.add_argument("model", help=model_help)
    s.add_argument("--wrt", required=True, help="the value(s) to differentiate, any float value "
                                                "of the model (comma-separated)")
    s.add_argument("--loss", help="the loss output (default: the only scalar float output)")
    s.set_defaults(func=cmd_explain)


def _length_item(text: str) -> tuple[str, int]:
    """One ``--sequence-length NAME=N`` item."""
    name, eq, n = text.rpartition("=")
    if not eq or not name or not n.isdigit():
        raise argparse.ArgumentTypeError(f"expected NAME=N (N a count), got {text!r}")
    return name, int(n)


def _user_errors() -> tuple[type[BaseException], ...]:
    from google.protobuf.message import DecodeError

    return (UserError, GraphError, OSError, DecodeError)


def _one_line(e: BaseException) -> str:
    if isinstance(e, OSError) and e.filename is not None:
        return f"{e.filename}: {e.strerror or e}"
    return " ".join(str(e).split()) or type(e).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    try:
        args.func(args)
    except BrokenPipeError:  # the reader went away (`graphdl inspect ... | head`): not an error
        sys.stderr.close()
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except _user_errors() as e:
        print(f"graphdl {args.command}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception:
        traceback.print_exc()
        print(f"graphdl {args.command}: internal error (a bug in graphdl; please report it)",
              file=sys.stderr)
        return 1
    return 0
