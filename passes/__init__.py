"""graphdl's compiler passes: shape inference, the backprop pass, clean-up."""
from .autodiff import grad
from .dce import DeadCodeElimination, eliminate_dead_nodes
from .manager import Pass, PassManager, PassResult
from .shape_inference import ShapeInference, infer_shapes

__all__ = ["grad", "Pass", "PassManager", "PassResult", "ShapeInference", "infer_shapes",
           "DeadCodeElimination", "eliminate_dead_nodes"]
