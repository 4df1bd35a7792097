"""The optimiser protocol: an optimiser builds the update subgraph of one training step.

Hyperparameters (``lr``, ``momentum``, ...) are scalar graph inputs, so a schedule changes a
feed, not the exported model. Optimiser state is explicit: each parameter ``P`` has state inputs
``P.<slot>`` (torch.optim's state names: ``momentum_buffer``, ``exp_avg``, ...) and an optimiser
with a step counter has the int64 input ``optim.step``; :func:`build_updates` returns the next
value of each, which the training step outputs as ``<name>.next``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Mapping

import numpy as np

from ..core.builder import GraphBuilder, Tensor
from ..core.errors import GraphError
from ..core.types import DType
from .transforms import (ACCUM_COUNT, ACCUM_SLOT, Accumulator, UpdateOptions,
                         clip_by_global_norm, l2_decay)

STEP = "optim.step"


class Optimizer:
    """Base class: subclasses set ``name``, ``defaults``, ``slots`` and define :meth:`update`."""

    name: ClassVar[str] = "optimizer"
    #: hyperparameter defaults; each becomes a scalar graph input of the parameters' dtype
    defaults: ClassVar[dict[str, float]] = {}
    #: per-parameter state slots, zero-initialised unless :meth:`init_slot` says otherwise
    slots: ClassVar[tuple[str, ...]] = ()
    #: whether the optimiser keeps the shared int64 step counter ``optim.step``
    counts_steps: ClassVar[bool] = False
    #: whether the optimiser applies its own (decoupled) ``weight_decay`` (AdamW)
    decoupled_decay: ClassVar[bool] = False

    def __init__(self, **hyperparams: float):
        unknown = set(hyperparams) - set(self.defaults)
        if unknown:
            raise GraphError(f"optimiser {self.name} has no hyperparameter(s) {sorted(unknown)}; "
                             f"it takes {sorted(self.defaults)}")
        self.hyperparams = {**self.defaults, **{k: float(v) for k, v in hyperparams.items()}}

    def init_slot(self, slot: str, param: np.ndarray) -> np.ndarray:
        """The initial value of state ``slot`` for a parameter whose value is ``param``."""
        return np.zeros_like(param)

    def shared(self, hp: dict[str, Tensor], step: Tensor | None) -> dict[str, Tensor]:
        """Scalars computed once per step for all parameters (bias corrections, 1 - beta);
        :meth:`update` finds them in ``hp`` beside the hyperparameters."""
        return {}

    def update(self, p: Tensor, g: Tensor, state: dict[str, Tensor], hp: dict[str, Tensor],
               step: Tensor | None) -> tuple[Tensor, dict[str, Tensor]]:
        """The new parameter and new state of one parameter ``p`` with gradient ``g``.
        ``step`` is the step number of this update (1 for the first) as a float scalar."""
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v:g}" for k, v in self.hyperparams.items())
        return f"{type(self).__name__}({args})"


@dataclass
class UpdateGraph:
    """What :func:`build_updates` added to a builder, by input name."""

    hyperparams: dict[str, Tensor]
    state_in: dict[str, Tensor]
    next_values: dict[str, Tensor]  # input name (parameter or state) -> its next value


def state_name(param: str, slot: str) -> str:
    return f"{param}.{slot}"


def build_updates(b: GraphBuilder, opt: Optimizer, params: Mapping[str, Tensor],
                  grads: Mapping[str, Tensor], options: UpdateOptions | None = None
                  ) -> UpdateGraph:
    """Adds the hyperparameter and state inputs of ``opt`` to ``b`` and the update of every
    parameter; params and grads map parameter names to tensors already on ``b``. ``options``
    adds accumulation, clipping, weight decay and learning-rate groups (optim.transforms)."""
    if not params:
        raise GraphError(f"optimiser {opt.name}: no parameters to update")
    opts = options or UpdateOptions()
    opts.check_groups(list(params))
    dtype = _common_dtype(params)
    names = all_hyperparams(opt, opts)
    hp = {k: b.input(k, (), dtype) for k in names}
    state_in: dict[str, Tensor] = {}
    nxt: dict[str, Tensor] = {}
    acc = Accumulator.build(b, opts.accumulate) if opts.accumulate > 1 else None
    if acc is not None:
        state_in[ACCUM_COUNT], nxt[ACCUM_COUNT] = acc.count, acc.next_count
    step = None
    if opt.counts_steps:
        count = b.input(STEP, (), "int64")
        state_in[STEP] = count
        if acc is None:
            nxt[STEP] = this = count + 1
        else:
            nxt[STEP], this = acc.step_count(count)
        step = b.apply1("cast", [this], to=dtype.name)
    grads = dict(grads)
    if acc is not None:
        for name, p in params.items():
            buf = b.input(state_name(name, ACCUM_SLOT), p.shape, p.dtype)
            state_in[buf.name] = buf
            grads[name], nxt[buf.name] = acc.mean(buf, grads[name])
    if "clip_norm" in hp:
        grads = clip_by_global_norm(grads, hp["clip_norm"])
    if "weight_decay" in hp and not opt.decoupled_decay:
        grads = l2_decay(params, grads, hp["weight_decay"])
    shared: dict[float, dict[str, Tensor]] = {}
    for name, p in params.items():
        scale = opts.scale_of(name)
        if scale not in shared:
            scaled = hp if scale == 1.0 else {**hp, "lr": hp["lr"] * scale}
            shared[scale] = {**scaled, **opt.shared(scaled, step)}
        slots = {s: b.input(state_name(name, s), p.shape, p.dtype) for s in opt.slots}
        state_in.update({state_name(name, s): t for s, t in slots.items()})
        new_p, new_slots = opt.update(p, grads[name], slots, shared[scale], step)
        if acc is not None:
            new_p = acc.hold(new_p, p)
            new_slots = {s: acc.hold(t, slots[s]) for s, t in new_slots.items()}
        nxt[name] = new_p
        nxt.update({state_name(name, s): t for s, t in new_slots.items()})
    return UpdateGraph(hp, state_in, nxt)


def all_hyperparams(opt: Optimizer, options: UpdateOptions | None = None) -> dict[str, float]:
    """The optimiser's hyperparameters and those ``options`` add, with their defaults."""
    return {**opt.hyperparams, **(options or UpdateOptions()).hyperparams(opt.decoupled_decay)}


def init_state(opt: Optimizer, params: Mapping[str, np.ndarray],
               options: UpdateOptions | None = None) -> dict[str, np.ndarray]:
    """The optimiser's initial state for parameters with these values, by input name."""
    out: dict[str, np.ndarray] = {}
    if options is not None and options.accumulate > 1:
        out[ACCUM_COUNT] = np.zeros((), np.int64)
        out.update({state_name(n, ACCUM_SLOT): np.zeros_like(np.asarray(v))
                    for n, v in params.items()})
    if opt.counts_steps:
        out[STEP] = np.zeros((), np.int64)
    for name, value in params.items():
        for s in opt.slots:
            out[state_name(name, s)] = np.asarray(opt.init_slot(s, np.asarray(value)))
    return out


def _common_dtype(params: Mapping[str, Tensor]) -> DType:
    dts = {p.dtype for p in params.values()}
    if len(dts) != 1:
        raise GraphError(f"parameters mix dtypes {sorted(d.name for d in dts)}; one optimiser "
                         "step needs one float dtype (cast the model first)")
    (dt,) = dts
    if not dt.is_float:
        raise GraphError(f"parameters must be floating point, got {dt.name}")
    return dt
