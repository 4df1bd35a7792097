"""Feeds for ``graphdl run`` from ``.npy`` and ``.npz`` files.

``--feed NAME=PATH.npy`` feeds one array; ``--feed NAME=PATH.npz`` the array stored under NAME
in that archive (or its only array); ``--feed PATH.npz`` every array in the archive under its
own name, which is what ``graphdl run -o OUT.npz`` writes, so one run's outputs can feed the
next. Pickled objects are never loaded.
"""
from __future__ import annotations

import zipfile
from typing import Sequence

import numpy as np

from ..core.errors import FeedError

HELP = ("NAME=PATH.npy feeds input NAME; NAME=PATH.npz the array NAME in the archive (or its "
        "only one); PATH.npz every array in it under its own name (what run -o writes); "
        "repeat for several")


def load_feeds(items: Sequence[str]) -> dict[str, np.ndarray]:
    """The ``--feed`` items as arrays by input name; FeedError naming the item at fault."""
    feeds: dict[str, np.ndarray] = {}
    for item in items:
        name, eq, path = item.partition("=")
        if not eq and item.endswith(".npz"):
            found = _archive(item, item)
        elif not eq or not name or not path:
            raise FeedError(f"--feed {item!r}: expected NAME=PATH.npy, NAME=PATH.npz or "
                            "PATH.npz")
        elif path.endswith(".npz"):
            found = {name: _member(name, path)}
        else:
            found = {name: _npy(name, path)}
        for key, arr in found.items():
            if key in feeds:
                raise FeedError(f"--feed {key!r} is given twice (again in {item!r})")
            feeds[key] = arr
    return feeds


def _npy(name: str, path: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except OSError as e:
        raise FeedError(f"--feed {name}: {path}: {e.strerror or e}") from None
    except ValueError as e:
        why = "" if "pickle" in str(e) else f" ({e})"
        raise FeedError(f"--feed {name}: {path} is not a .npy array file{why}") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise FeedError(f"--feed {name}: {path} holds several arrays; name it PATH.npz, or "
                        f"feed it as --feed {path} to feed them all by name")
    return arr


def _archive(item: str, path: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` by its name."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except AttributeError:  # np.load gave a plain array: a .npy under an .npz name
        raise FeedError(f"--feed {item}: {path} is a single .npy array; give NAME={path}") \
            from None
    except OSError as e:
        raise FeedError(f"--feed {item}: {path}: {e.strerror or e}") from None
    except (ValueError, zipfile.BadZipFile) as e:
        raise FeedError(f"--feed {item}: {path} is not a readable .npz archive ({e})") from None


def _member(name: str, path: str) -> np.ndarray:
    arrays = _archive(f"{name}={path}", path)
    if name in arrays:
        return arrays[name]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise FeedError(f"--feed {name}={path}: the archive has no array {name!r}; it has "
                    f"{sorted(arrays)}")
