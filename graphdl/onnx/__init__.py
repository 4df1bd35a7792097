"""The ONNX boundary: export (with onnxruntime's kernel coverage), import (checks, the importer
context, one importer module per op family, sequence and optional inputs), external data and
listings of models graphdl cannot import."""
