"""Data for the TangleNAS spaces, with no download: scikit-learn's bundled digits by default, Fashion-MNIST (IDX files)
or CIFAR-10 (python pickles) from a data root, and character text from any UTF-8 file (default: the pydoc topics
corpus that ships with Python). Splits are fixed by the data, not by the search seed, so every method sees the same."""

from __future__ import annotations

import gzip
import os
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from archgym.errors import ConfigError

IMAGE_DATASETS = ("digits", "fashion_mnist", "cifar10")
DATASETS = IMAGE_DATASETS + ("text",)
SPLIT_SEED = 12345


@dataclass
class ImageData:
    """Normalised ``[N, C, H, W]`` float images and int64 labels for train / validation / test."""

    name: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    n_classes: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]


@dataclass
class TextData:
    """A character corpus as int64 token ids (contiguous train / validation / test parts) and its vocabulary."""

    name: str
    train: Tensor
    val: Tensor
    test: Tensor
    vocab: str

    def decode(self, ids: Any) -> str:
        return "".join(self.vocab[int(i)] for i in ids)


def shared_shakespeare() -> Path | None:
    """Tiny Shakespeare under ``$ARCHGYM_DATA`` or a ``shared/data`` folder above the package, if present."""
    roots = [Path(os.environ["ARCHGYM_DATA"])] if "ARCHGYM_DATA" in os.environ else []
    roots += [parent / "shared" / "data" for parent in Path(__file__).resolve().parents]
    for root in roots:
        if (root / "tinyshakespeare" / "input.txt").is_file():
            return root / "tinyshakespeare" / "input.txt"
    return None


# --------------------------------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------------------------------


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (the MNIST / Fashion-MNIST format, optionally gzipped) into a numpy array."""
    path = Path(path)
    with _open(path) as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ConfigError(f"{path} is not an IDX file (bad magic number)")
    dtypes = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ConfigError(f"{path}: unknown IDX element type 0x{data[2]:02x}")
    ndim = data[3]
    dims = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=dtypes[data[2]], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ConfigError(f"{path}: IDX header says {dims} but the file holds {arr.size} elements")
    return arr.reshape(dims)


def _find(root: Path, stem: str, what: str) -> Path:
    for sub in ("", "fashion_mnist", "FashionMNIST/raw", "fashion-mnist"):
        for suffix in ("", ".gz"):
            cand = root / sub / f"{stem}{suffix}"
            if cand.is_file():
                return cand
    raise ConfigError(f"{what}: {stem}[.gz] not found under data_root {str(root)!r} (expected the standard IDX files)")


def _fashion_mnist(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    get = lambda stem: read_idx(_find(root, stem, "fashion_mnist"))  # noqa: E731
    return (get("train-images-idx3-ubyte")[:, None], get("train-labels-idx1-ubyte"),
            get("t10k-images-idx3-ubyte")[:, None], get("t10k-labels-idx1-ubyte"))


def _cifar10(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    base = root / "cifar-10-batches-py" if (root / "cifar-10-batches-py").is_dir() else root
    files = [base / f"data_batch_{i}" for i in range(1, 6)] + [base / "test_batch"]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise ConfigError(f"cifar10: {', '.join(missing)} not found under {str(base)!r} (the python pickle version)")

    def load(f: Path) -> tuple[np.ndarray, np.ndarray]:
        with open(f, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
        return np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32), np.asarray(d[b"labels"])

    parts = [load(f) for f in files[:5]]
    xt, yt = load(files[5])
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]), xt, yt


def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images[:, None].astype(np.float32), d.target


# --------------------------------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------------------------------


def _split(n: int, fractions: tuple[float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    a, b = int(n * fractions[0]), int(n * (fractions[0] + fractions[1]))
    return perm[:a], perm[a:b], perm[b:]


def load_images(dataset: str = "digits", data_root: str | None = None, max_train: int | None = None) -> ImageData:
    """Load an image data set with fixed splits (digits: 60/20/20; the others: their test set, 10% of train as val)."""
    if dataset not in IMAGE_DATASETS:
        raise ConfigError(f"dataset {dataset!r} is not an image data set; allowed: {', '.join(IMAGE_DATASETS)}")
    if dataset == "digits":
        x, y = _digits()
        tr, va, te = _split(len(x), (0.6, 0.2))
        xtr, ytr, xva, yva, xte, yte = x[tr], y[tr], x[va], y[va], x[te], y[te]
    else:
        if data_root is None:
            raise ConfigError(f"dataset {dataset!r} needs data_root (a folder with the "
                              f"{'IDX files' if dataset == 'fashion_mnist' else 'cifar-10-batches-py pickles'})")
        root = Path(data_root).expanduser()
        xa, ya, xte, yte = _fashion_mnist(root) if dataset == "fashion_mnist" else _cifar10(root)
        tr, va, _ = _split(len(xa), (0.9, 0.1))
        xtr, ytr, xva, yva = xa[tr], ya[tr], xa[va], ya[va]
    if max_train is not None:
        if max_train < 10:
            raise ConfigError(f"max_train must be >= 10, got {max_train}")
        xtr, ytr = xtr[:max_train], ytr[:max_train]
        xva, yva, xte, yte = xva[:max_train], yva[:max_train], xte[:max_train], yte[:max_train]
    xtr = np.asarray(xtr, dtype=np.float32)
    mean = xtr.mean(axis=(0, 2, 3), keepdims=True)
    std = xtr.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    norm = lambda a: torch.from_numpy(((np.asarray(a, dtype=np.float32) - mean) / std).astype(np.float32))  # noqa: E731
    lab = lambda a: torch.from_numpy(np.asarray(a, dtype=np.int64))  # noqa: E731
    return ImageData(dataset, norm(xtr), lab(ytr), norm(xva), lab(yva), norm(xte), lab(yte), int(max(ytr.max(), yva.max()) + 1))


def default_corpus() -> str:
    """The pydoc topics corpus that ships with every CPython (about 0.46 M characters of English prose and code)."""
    from pydoc_data.topics import topics

    return "".join(topics[k] for k in sorted(topics))


def load_text(text_path: str | None = None, max_chars: int | None = None) -> TextData:
    """A character corpus from ``text_path`` (UTF-8) or the default corpus; contiguous 90/5/5 split."""
    if text_path is None:
        text, name = default_corpus(), "pydoc_topics"
    else:
        path = Path(text_path).expanduser()
        if not path.is_file():
            raise ConfigError(f"text_path {str(path)!r} does not exist (any UTF-8 text file works, e.g. tinyshakespeare/input.txt)")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"text_path {str(path)!r} is not UTF-8 text ({exc.reason})") from None
        name = path.name
    if max_chars is not None:
        text = text[:max_chars]
    if len(text) < 1000:
        raise ConfigError(f"the text corpus has {len(text)} characters; at least 1000 are needed")
    vocab = "".join(sorted(set(text)))
    lookup = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([lookup[c] for c in text], dtype=torch.int64)
    a, b = int(0.9 * len(ids)), int(0.95 * len(ids))
    return TextData(name, ids[:a], ids[a:b], ids[b:], vocab)


def load_data(spec: Mapping[str, Any]) -> ImageData | TextData:
    """Load the data a spec names: ``{"dataset": ..., "data_root": ..., "text_path": ..., "max_train": ...}``
    (cached per process: searchers and simulators on the same data share one copy)."""
    unknown = set(spec) - {"dataset", "data_root", "text_path", "max_train", "max_chars"}
    if unknown:
        raise ConfigError(f"unknown data option(s) {sorted(unknown)}; allowed: dataset, data_root, text_path, max_train, max_chars")
    dataset = spec.get("dataset", "digits")
    if dataset not in DATASETS:
        raise ConfigError(f"dataset {dataset!r} is not known; allowed: {', '.join(DATASETS)}")
    return _load_cached(dataset, spec.get("data_root"), spec.get("text_path"), spec.get("max_train"), spec.get("max_chars"))


@lru_cache(maxsize=4)
def _load_cached(dataset: str, data_root: str | None, text_path: str | None, max_train: int | None,
                 max_chars: int | None) -> ImageData | TextData:
    if dataset == "text":
        return load_text(text_path, max_chars)
    return load_images(dataset, data_root, max_train)


# --------------------------------------------------------------------------------------------------------------------
# Batching
# --------------------------------------------------------------------------------------------------------------------


def text_batch(ids: Tensor, starts: np.ndarray, block: int) -> tuple[Tensor, Tensor]:
    """Input and next-character target windows of length ``block`` starting at ``starts``."""
    idx = torch.as_tensor(starts, dtype=torch.int64)[:, None] + torch.arange(block + 1)[None, :]
    win = ids[idx]
    return win[:, :-1], win[:, 1:]


def eval_starts(n_tokens: int, block: int, max_windows: int) -> np.ndarray:
    """Evenly spaced, non-random evaluation windows over a token stream (at most ``max_windows``)."""
    last = n_tokens - block - 1
    if last < 0:
        raise ConfigError(f"a text split of {n_tokens} characters is shorter than one block of {block + 1}")
    n = min(max_windows, last // block + 1)
    return np.linspace(0, last, n).astype(np.int64)
