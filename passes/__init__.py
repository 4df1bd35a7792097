"""graphdl's compiler passes: shape inference, the backprop pass, clean-up, stability rewrites
and fusion, composed by a PassManager (``default_pipeline()`` is the standard list)."""
from .autodiff import expand_gradients, grad
from .constant_folding import ConstantFolding
from .cse import CommonSubexpressionElimination
from .dce import DeadCodeElimination, eliminate_dead_nodes
from .fold_batch_norm import FoldBatchNorm
from .fusion import ActivationFusion, ElementwiseFusion, GemmFusion, LossGradFusion
from .manager import Pass, PassManager, PassResult, TraceEntry
from .pipeline import default_pipeline, optimize
from .shape_inference import ShapeInference, infer_shapes
from .simplify import Simplify
from .stability import StabilityRewrites
from .training import training_step

__all__ = ["grad", "expand_gradients", "Pass", "PassManager", "PassResult", "TraceEntry",
           "ShapeInference", "infer_shapes", "DeadCodeElimination", "eliminate_dead_nodes",
           "CommonSubexpressionElimination", "ConstantFolding", "Simplify", "StabilityRewrites",
           "GemmFusion", "ActivationFusion", "LossGradFusion", "ElementwiseFusion",
           "default_pipeline", "optimize", "training_step", "FoldBatchNorm"]
