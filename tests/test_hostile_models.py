"""Hostile and broken model files: a corpus built by code (tests/hostile_corpus.py) and random
byte mutations of valid models. Each one must be refused cleanly: a GraphError subclass from
``graphdl.from_onnx`` and, on the command line, exit status 2 with exactly one line on stderr;
never a crash, a hang or an out-of-memory kill. Mutations that still form a valid model must
import and run (exit 0). Cases run in worker subprocesses under a per-case alarm and a memory
cap, many cases per process to keep the run short."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile_corpus import CORPUS, mutations

ROOT = Path(__file__).resolve().parent.parent
CASE_TIMEOUT_S = 20
MEM_CAP = 3 << 30  # the worker's address-space limit: a huge allocation fails, it is not slow
N_MUTATIONS = 400

#: A word the one-line error must contain: it says what is wrong.
EXPECT = {
    "name_not_utf8": "not valid text", "name_with_nul": "not valid text",
    "no_outputs": "no outputs", "model_is_fifo": "not a regular file",
    "model_is_folder": "not a regular file",
    "opset_9999": "opset 9999", "opset_0": "opset 0", "unknown_op": "FrobnicateTensor",
    "unknown_domain": "com.evil", "dangling_input": "ghost", "cycle": "cycle",
    "self_loop": "cycle", "duplicate_node_output": "defined twice",
    "duplicate_initializer": "defined twice", "duplicate_graph_input": "defined twice",
    "nodes_out_of_order": "topological order", "attr_wrong_type": "must be INTS",
    "attr_type_field_mismatch": "tagged INTS",
    "attr_outside_schema": "attribute 'transA' is not defined by MatMul at ai.onnx opset 17",
    "input_past_arity": "has 2 inputs, but Relu at ai.onnx opset 17 takes at most 1",
    "negative_dim": "negative dim",
    "overflowing_dims": "overflows int64", "init_raw_too_short": "raw data holds 4",
    "init_float_data_count": "float_data holds 1", "init_petabyte_dims": "PiB",
    "const_of_shape_4tib": "TiB", "const_of_shape_overflow": "overflows int64",
    "expand_huge": "limit", "tile_huge": "limit", "range_huge": "PiB",
    "ext_dotdot": "'..'", "ext_absolute": "absolute", "ext_symlink": "symbolic link",
    "ext_parent_symlink": "symbolic link 'sub'", "ext_hardlink": "hard link",
    "ext_fifo": "not a regular file", "ext_device": "not a regular file",
    "ext_offset_beyond": "offset 1000", "ext_length_beyond": "length 1000000",
    "ext_petabyte": "PiB", "ext_negative_offset": "negative",
    "conv_stride_0": "strides [0, 0]", "softmax_axis_99": "axis 99", "slice_step_0": "step 0",
    "pad_2e40": "overflows int64", "tile_negative": "must not be negative",
    "cast_to_999": "999", "range_delta_0": "delta is 0", "lrn_size_0": "at least 1",
    "split_num_outputs_0": "num_outputs is 0", "split_num_outputs_2e40": "num_outputs is",
}


def _run_batch(paths: list[Path]) -> dict[str, dict]:
    """Results by path; a case whose worker died (signal, OOM kill) or hung is reported so."""
    proc = subprocess.run(
        [sys.executable, "-m", "tests.hostile_corpus", str(CASE_TIMEOUT_S), str(MEM_CAP)],
        input="\n".join(map(str, paths)) + "\n", capture_output=True, text=True, cwd=ROOT,
        timeout=CASE_TIMEOUT_S * len(paths) + 60)
    results = {}
    for line in proc.stdout.splitlines():
        res = json.loads(line)
        results[res["path"]] = res
    for p in paths:
        results.setdefault(str(p), {"rc": f"worker died ({proc.returncode})",
                                    "stderr": proc.stderr.splitlines()[-3:]})
    return results


def _clean_rejection(res: dict) -> bool:
    return (res["rc"] == 2 and len(res["stderr"]) == 1
            and res["stderr"][0].startswith("graphdl inspect: error: ")
            and not res["api"].startswith("!") and res["api"] != "ok")


def _clean_acceptance(res: dict) -> bool:
    """Imported, then each engine ran it (0) or refused it on one line (2). NumPy's warnings
    about overflow in the arithmetic of a mutated (but valid) model are not errors."""
    runs = res.get("run_rc", [])
    errors = [line for line in res.get("run_stderr", []) if "RuntimeWarning" not in line]
    return res["rc"] == 0 and res["api"] == "ok" and len(runs) == 2 \
        and set(runs) <= {0, 2} and len(errors) == runs.count(2) \
        and all(line.startswith("graphdl run: error: ") for line in errors)


@pytest.fixture(scope="module")
def corpus_results(tmp_path_factory) -> dict[str, dict]:
    paths = {}
    for name, make in CORPUS.items():
        folder = tmp_path_factory.mktemp(name)
        paths[name] = make(folder)
    by_path = _run_batch(list(paths.values()))
    return {name: by_path[str(p)] for name, p in paths.items()}


def test_corpus_is_large_and_distinct():
    assert len(CORPUS) >= 30


def test_every_hostile_model_is_a_clean_rejection(corpus_results):
    bad = {n: r for n, r in corpus_results.items() if not _clean_rejection(r)}
    print(f"\nhostile corpus: {len(corpus_results)} models, "
          f"{len(corpus_results) - len(bad)} clean rejections, {len(bad)} failures")
    assert not bad, json.dumps(bad, indent=1)[:4000]


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_rejection_says_what_is_wrong(corpus_results, name):
    line = corpus_results[name]["stderr"][0]
    assert EXPECT[name] in line, line


def test_random_byte_mutations_never_crash(tmp_path):
    datas = mutations(N_MUTATIONS, seed=9)
    paths = []
    for i, data in enumerate(datas):
        folder = tmp_path / f"m{i}"
        folder.mkdir()
        paths.append(folder / "model.onnx")
        paths[-1].write_bytes(data)
    half = len(paths) // 2
    results = {**_run_batch(paths[:half]), **_run_batch(paths[half:])}
    rejected = [r for r in results.values() if _clean_rejection(r)]
    accepted = [r for r in results.values() if _clean_acceptance(r)]
    bad = [r for r in results.values() if not (_clean_rejection(r) or _clean_acceptance(r))]
    print(f"\nmutations: {len(results)} models, {len(rejected)} clean rejections, "
          f"{len(accepted)} still valid (imported, ran in both engines), "
          f"{len(bad)} crashes/hangs/OOM")
    assert len(results) >= 200
    assert not bad, json.dumps(bad[:5], indent=1)[:4000]
    assert len(rejected) > len(results) // 2  # the mutations do break most models


@pytest.mark.parametrize("name", ["cycle", "ext_hardlink", "const_of_shape_4tib",
                                  "attr_outside_schema"])
def test_real_command_line_exits_2_with_one_line(tmp_path, name):
    path = CORPUS[name](tmp_path)
    proc = subprocess.run([sys.executable, "-m", "graphdl", "inspect", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and EXPECT[name] in proc.stderr, proc.stderr
