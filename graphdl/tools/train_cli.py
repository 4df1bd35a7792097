"""``graphdl train-step``, ``graphdl train`` and ``graphdl export-trained``: fine-tuning from the
shell (CONTRACT.md, "Training from the command line"). The training step itself comes from
``passes.training_step`` through graphdl.tools.cli, the one module that imports ``passes``."""
from __future__ import annotations

import argparse
import os
import shutil
from typing import Any

import numpy as np

from ..core.errors import GraphError


def _globs(text: str | None) -> list[str] | None:
    return None if text is None else [p.strip() for p in text.split(",") if p.strip()]


def _optimizer(args: argparse.Namespace):
    from ..optim import OPTIMIZERS

    kw: dict[str, Any] = {} if args.lr is None else {"lr": args.lr}
    if args.momentum is not None:
        if args.optimizer not in ("sgd", "rmsprop"):
            raise GraphError(f"--momentum is for sgd and rmsprop, not {args.optimizer}")
        kw["momentum"] = args.momentum
    if args.optimizer == "adamw" and args.weight_decay is not None:
        kw["weight_decay"] = args.weight_decay
    return OPTIMIZERS[args.optimizer](**kw)


def _options(args: argparse.Namespace):
    from ..optim import UpdateOptions

    scales = {}
    for item in args.lr_group:
        glob, eq, factor = item.rpartition("=")
        try:
            scales[glob] = float(factor)
        except ValueError:
            raise GraphError(f"--lr-group {item!r}: expected GLOB=FACTOR") from None
        if not eq or not glob:
            raise GraphError(f"--lr-group {item!r}: expected GLOB=FACTOR")
    wd = 0.0 if args.optimizer == "adamw" else (args.weight_decay or 0.0)
    return UpdateOptions(weight_decay=wd, clip_norm=args.clip_norm, lr_scale=scales,
                         accumulate=args.accumulate)


def cmd_train_step(args: argparse.Namespace) -> None:
    from .cli import load_model, pick_loss, training_step_for
    from ..training.finetune import LOSSES, count
    from ..training.lora import LoraSpec

    g = load_model(args.model, args.sequence_length)
    if args.attach and args.loss:
        raise GraphError("give either --loss (an existing output) or --attach, not both")
    if args.attach and not args.logits:
        raise GraphError("--attach needs --logits OUTPUT (the output the loss reads)")
    if (args.lora is None) != (args.lora_targets is None):
        raise GraphError("--lora RANK and --lora-targets GLOB go together")
    loss = "loss" if args.attach else pick_loss(g, args.loss)
    shape = None if args.attach else g.value(loss).type.shape
    if shape is not None and any(d != 1 for d in shape):
        raise GraphError(f"output {loss!r} is not a scalar loss ({g.value(loss).type}); attach "
                         f"one with --attach {'|'.join(LOSSES)} --logits {loss}")
    lora = None if args.lora is None else LoraSpec(args.lora, _globs(args.lora_targets) or [])
    step = training_step_for(g, _optimizer(args), loss, attach=args.attach, logits=args.logits,
                             labels=args.labels, trainable=_globs(args.trainable),
                             freeze=_globs(args.freeze) or (), lora=lora,
                             options=_options(args))
    os.makedirs(args.output, exist_ok=True)
    paths = step.save(args.output, opset=args.opset)
    _write_inference_model(args, g, os.path.join(args.output, "infer.onnx"))
    params = list(step.params(step.initial))
    total = sum(int(np.asarray(a).size) for v, a in g.initializers.items()
                if v.type.dtype.is_float)
    print(f"trainable parameters ({len(params)} tensors, {count(step.initial, params)} of "
          f"{total} float initializer elements):")
    for n in params:
        print(f"  {n}  {np.asarray(step.initial[n]).size}")
    print(f"wrote {paths['onnx']}, {paths['manifest']}, {paths['initial']}, "
          f"{os.path.join(args.output, 'infer.onnx')}")


def _write_inference_model(args: argparse.Namespace, g, path: str) -> None:
    """The original .onnx file as it is (same names, bit-identical initializers); a Python
    model, or any model with --opset, exported."""
    from ..core.fileio import write_atomic
    from ..onnx.export import to_onnx

    if args.model.endswith(".onnx") and args.opset is None:
        tmp = path + ".part"
        shutil.copyfile(args.model, tmp)
        os.replace(tmp, path)
        return
    write_atomic(path, to_onnx(g, args.opset).SerializeToString())


def cmd_train(args: argparse.Namespace) -> None:
    from ..training.distributed import world
    from ..training.schedules import make_schedule
    from ..training.train_data import data_length
    from ..training.step import TrainStep
    from ..training.trainer import Trainer

    for ext in (".onnx", ".json", ".init.npz"):
        if not os.path.exists(os.path.join(args.dir, "train_step" + ext)):
            raise GraphError(f"{args.dir}: no train_step{ext} (write it with graphdl "
                             "train-step)")
    comm = world(args.comm_timeout)
    if comm.size > 1:  # started by mpiexec -n R: data-parallel (graphdl.tools.train_command)
        if args.schedule != "constant" or args.warmup:
            raise GraphError("learning-rate schedules are not supported under MPI yet")
        from .train_command import train_data_parallel

        train_data_parallel(args, comm)
        return
    step = TrainStep.load(args.dir)
    data = _load_data(args.data)
    names = [s["name"] for s in step.manifest["batch_inputs"]]
    n = data_length(data, names, args.data)
    steps_per_epoch = -(-n // args.batch_size)
    schedule = None
    if args.schedule != "constant" or args.warmup:
        schedule = make_schedule(args.schedule, steps_per_epoch * args.epochs, args.warmup,
                                 args.step_size or steps_per_epoch, args.gamma)
    hp = {} if args.lr is None else {"lr": args.lr}
    ckpt = os.path.join(args.dir, "state.npz")
    trainer = Trainer(step, args.engine, args.provider, args.batch_size, args.seed, hp,
                      checkpoint=ckpt, shuffle=not args.no_shuffle, schedule=schedule)
    if args.resume:
        if not os.path.isfile(ckpt):
            raise GraphError(f"--resume: {ckpt} does not exist (no epoch has finished yet)")
        trainer.load(ckpt)
        if args.lr is not None:  # the checkpoint's learning rate, unless given again
            trainer.set_hyperparams(lr=args.lr)
    history = trainer.fit({k: data[k] for k in names}, args.epochs)
    last = history[-1] if history else {}
    extra = "".join(f" {k}={last[k]:.6g}" for k in step.manifest["metrics"] if k in last)
    print(f"final_loss={last.get(step.manifest['loss'], float('nan')):.6g} "
          f"epochs={trainer.epoch} steps={trainer.steps}{extra}")


def _load_data(path: str) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise GraphError(f"{path}: expected an .npz file of named arrays")
            return {k: z[k] for k in z.files}
    except ValueError as e:
        raise GraphError(f"{path}: not an .npz file of arrays ({e})") from None


def cmd_export_trained(args: argparse.Namespace) -> None:
    from ..training.write_back import export_trained

    values = export_trained(args.dir, args.output, args.state)
    print(f"wrote {args.output}: {len(values)} initializers trained "
          f"({sum(v.size for v in values.values())} elements), the rest as in "
          f"{os.path.join(args.dir, 'infer.onnx')}")


def add_training_commands(sub: Any, model_help: str) -> None:
    """Registers train-step, train and export-trained on the ``graphdl`` parser."""
    from ..training.finetune import LOSSES
    from ..optim import OPTIMIZERS
    from ..training.schedules import NAMES

    s = sub.add_parser("train-step", help="write a training step (ONNX + manifest) for a model")
    s.add_argument("model", help=model_help)
    s.add_argument("-o", "--output", required=True, metavar="DIR", help="folder to write")
    s.add_argument("--loss", help="an existing scalar float output to minimise")
    s.add_argument("--attach", choices=LOSSES, help="attach this loss to --logits")
    s.add_argument("--logits", help="with --attach: the output the loss reads")
    s.add_argument("--labels", default="labels", help="with --attach: the new labels input")
    s.add_argument("--optimizer", choices=[k for k in OPTIMIZERS if k != "momentum"],
                   default="adam")
    s.add_argument("--lr", type=float)
    s.add_argument("--momentum", type=float)
    s.add_argument("--weight-decay", type=float)
    s.add_argument("--clip-norm", type=float, help="global-norm gradient clipping")
    s.add_argument("--accumulate", type=int, default=1, metavar="K",
                   help="apply the mean gradient of K micro-batches every K steps")
    s.add_argument("--lr-group", action="append", default=[], metavar="GLOB=FACTOR",
                   help="learning-rate multiplier for the trained parameters matching GLOB")
    s.add_argument("--trainable", metavar="GLOB[,GLOB...]",
                   help="train only these (default: every true parameter; inspect --params)")
    s.add_argument("--freeze", metavar="GLOB[,GLOB...]", help="do not train these")
    s.add_argument("--lora", type=int, metavar="RANK", help="train rank-RANK adapters")
    s.add_argument("--lora-targets", metavar="GLOB[,GLOB...]",
                   help="with --lora: the MatMul/Gemm weights to adapt")
    s.add_argument("--opset", type=int, default=None, help="ONNX opset of the written files")
    s.set_defaults(func=cmd_train_step)
    s = sub.add_parser("train", help="train a training-step folder on DATA.npz")
    s.add_argument("dir", help="a folder written by graphdl train-step")
    s.add_argument("--data", required=True, help=".npz with one array per batch input")
    s.add_argument("--epochs", type=int, default=1)
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-shuffle", action="store_true")
    s.add_argument("--engine", choices=["ort", "numpy"], default="ort")
    s.add_argument("--provider", choices=["cpu", "cuda", "auto"], default="cpu")
    s.add_argument("--lr", type=float, help="override the step's learning rate")
    s.add_argument("--schedule", choices=NAMES, default="constant",
                   help="learning-rate schedule over all steps")
    s.add_argument("--warmup", type=int, default=0, metavar="STEPS", help="linear warm-up")
    s.add_argument("--step-size", type=int, default=None, metavar="STEPS",
                   help="with --schedule step: steps between decays (default: one epoch)")
    s.add_argument("--gamma", type=float, default=0.1, help="with --schedule step: the decay")
    s.add_argument("--resume", action="store_true", help="continue from DIR/state.npz")
    s.add_argument("--threads", type=int, help="under MPI: onnxruntime threads per process "
                   "(default: the machine's cores shared among its ranks)")
    s.add_argument("--comm-timeout", type=float, default=20.0,
                   help="under MPI: seconds to wait for another rank before naming it failed")
    s.set_defaults(func=cmd_train)
    s = sub.add_parser("export-trained", help="the inference model with trained weights")
    s.add_argument("dir", help="a folder written by graphdl train-step")
    s.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    s.add_argument("--state", help="state .npz (default DIR/state.npz)")
    s.set_defaults(func=cmd_export_trained)
