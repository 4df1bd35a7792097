"""Layers that build into a tensor's graph builder: ``Dense(64, 256, "relu")(x)``.

See :mod:`graphdl.nn.layer` for the protocol new layers follow.
"""
from .dense import ACTIVATIONS, MLP, Dense, get_activation
from .init import INITS, glorot_uniform, he_normal
from .layer import Layer, Sequential
from .recurrent import GRU, LSTM, RNN, onnx_weights_from_torch
from .normalization import BatchNorm, Dropout, set_training
from .regularizers import kl_sparsity, l1_activity, l1_penalty, l2_penalty, weights_of
from .autoencoder import Autoencoder
from .conv import AvgPool2d, Conv1d, Conv2d, Flatten, MaxPool2d
from .transformer import (GELU, Embedding, LayerNorm, MultiHeadAttention, PositionEmbedding,
                          Residual, TransformerEncoderLayer, key_padding_mask)
from .mobile import DepthwiseConv2d, GlobalAvgPool, relu6

__all__ = ["Layer", "Sequential", "Dense", "MLP", "ACTIVATIONS", "get_activation", "INITS",
           "he_normal", "glorot_uniform",
           "BatchNorm", "Dropout", "set_training", "Autoencoder", "l1_penalty", "l2_penalty",
           "l1_activity", "kl_sparsity", "weights_of"]
__all__ += ["RNN", "LSTM", "GRU", "onnx_weights_from_torch"]
__all__ += ["Conv1d", "Conv2d", "MaxPool2d", "AvgPool2d", "Flatten"]
__all__ += ["Embedding", "PositionEmbedding", "LayerNorm", "GELU", "MultiHeadAttention",
            "TransformerEncoderLayer", "Residual", "key_padding_mask", "DepthwiseConv2d",
            "GlobalAvgPool", "relu6"]
