#!/usr/bin/env bash
# Installs onnxruntime-node for train_digits.mjs. Its install script would download extra
# (CUDA/TensorRT) binaries from a host CI cannot reach; skipping that keeps the CPU binary that
# ships inside the npm package, which is all the example needs.
set -euo pipefail
cd "$(dirname "$0")"
ONNXRUNTIME_NODE_INSTALL=skip ONNXRUNTIME_NODE_INSTALL_CUDA=skip \
    npm install --no-audit --no-fund --loglevel=error
