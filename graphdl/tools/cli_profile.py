"""``graphdl profile MODEL_OR_STEP_DIR [--feed NAME=PATH ...] [--backend ort|numpy]``: where a
model's or a training step's time goes (graphdl/tools/profiling.py prints the report)."""
from __future__ import annotations

import argparse
import os
from typing import Any


def add_command(sub: Any, model_help: str) -> None:
    s = sub.add_parser("profile", help="time every node: the top ops by time, their share, "
                                       "multiply-add rates and the forward node of each "
                                       "gradient op")
    s.add_argument("model", help=model_help + ", or a training-step directory "
                                              "(TrainStep.save)")
    s.add_argument("--feed", action="append", default=[], metavar="NAME=PATH.npy",
                   help="input data (default: random data of each input's shape; a step "
                        "directory's state and hyperparameters)")
    s.add_argument("--backend", choices=["ort", "numpy"], default="ort")
    s.add_argument("--runs", type=_positive, default=10, help="timed runs (default 10)")
    s.add_argument("--threads", type=_positive, default=1,
                   help="onnxruntime intra-op threads (default 1)")
    s.add_argument("--batch", type=_positive, default=32,
                   help="the size of symbolic dims in generated feeds (default 32)")
    s.add_argument("--top", type=_positive, default=15, help="rows per table (default 15)")
    s.set_defaults(func=cmd_profile)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a count >= 1, got {text!r}")
    return int(text)


def cmd_profile(args: argparse.Namespace) -> None:
    from .cli import load_model, parse_feeds
    from .profiling import profile

    feeds = parse_feeds(args.feed)
    path = args.model
    if os.path.isdir(path) or (os.path.isfile(path) and not path.endswith(".py")):
        model: Any = path  # a step directory or an ONNX file, run as it is
    elif os.path.splitext(path.rsplit(":", 1)[0])[1] == ".py":
        model = load_model(path)  # FILE.py[:NAME]
    else:
        raise FileNotFoundError(2, "no such file or directory", path)
    report = profile(model, feeds, backend=args.backend, runs=args.runs, threads=args.threads,
                     batch=args.batch)
    print(report.format(args.top))
