"""Node-classification data sets for the train-and-evaluate simulators: Planetoid citation graphs (public split) read
from a data root, and a synthetic stochastic-block-model graph generated locally so that demos and tests need no files.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Data

from archgym.errors import ConfigError

PLANETOID = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
SYNTHETIC = "synthetic"
DATASETS = (*PLANETOID, SYNTHETIC)

_COPIES: dict[tuple[str, str], Data] = {}


def load_dataset(name: str, data_root: str | os.PathLike | None = None, seed: int = 0, **synthetic_kwargs: int | float) -> Data:
    """The data set ``name`` (one of DATASETS) as a PyG ``Data`` with train/val/test masks and ``num_classes``.

    ``synthetic_kwargs`` (``num_nodes``, ``num_classes``, ...) size the synthetic graph; ``seed`` draws it.
    """
    key = str(name).lower()
    if key == SYNTHETIC:
        return synthetic_sbm(seed=seed, **synthetic_kwargs)  # type: ignore[arg-type]
    if key in PLANETOID:
        return planetoid(key, data_root)
    raise ConfigError(f"dataset {name!r} is not known; allowed: {', '.join(DATASETS)}")


def data_roots(data_root: str | os.PathLike | None = None) -> list[Path]:
    """Where Planetoid files are looked for: ``data_root``, then ``$ARCHGYM_DATA`` (each as given and its
    ``planetoid/`` sub-folder)."""
    roots = [Path(r) for r in (data_root, os.environ.get("ARCHGYM_DATA")) if r]
    return [p for r in roots for p in (r, r / "planetoid")]


def _raw_dir(root: Path, folder: str, key: str) -> Path | None:
    raw = root / folder / "raw"
    return raw if (raw / f"ind.{key}.graph").is_file() else None


def _online(host: str = "github.com", timeout: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def planetoid(name: str, data_root: str | os.PathLike | None = None, download: bool = True) -> Data:
    """Planetoid ``name`` (cora/citeseer/pubmed) with its public split and row-normalised features (as GCN and GAT).

    The raw ``ind.<name>.*`` files are looked for under each of ``data_roots(data_root)`` as ``<Name>/raw``; found
    ones are copied to a private temporary folder (PyG writes ``processed/`` beside ``raw/``, and the source may be
    read-only). Otherwise PyG downloads them into ``~/.cache/archgym/planetoid`` when a network is reachable.
    """
    from torch_geometric.datasets import Planetoid
    from torch_geometric.transforms import NormalizeFeatures

    key = name.lower()
    if key not in PLANETOID:
        raise ConfigError(f"Planetoid data set {name!r} is not known; allowed: {', '.join(PLANETOID)}")
    folder = PLANETOID[key]
    roots = data_roots(data_root)
    for root in roots:
        raw = _raw_dir(root, folder, key)
        if raw is None:
            continue
        cache_key = (key, str(raw.resolve()))
        if cache_key not in _COPIES:
            tmp = Path(tempfile.mkdtemp(prefix=f"archgym-{key}-"))
            shutil.copytree(raw, tmp / folder / "raw")
            ds = Planetoid(str(tmp), folder, transform=NormalizeFeatures())
            _COPIES[cache_key] = _with_classes(ds[0], ds.num_classes)
        return _COPIES[cache_key].clone()
    cache = Path.home() / ".cache" / "archgym" / "planetoid"
    if _raw_dir(cache, folder, key) is not None or (download and _online()):
        try:
            ds = Planetoid(str(cache), folder, transform=NormalizeFeatures())
            return _with_classes(ds[0], ds.num_classes)
        except Exception as exc:  # noqa: BLE001 - a failed download becomes the clear message below
            reason = f"download failed ({type(exc).__name__}: {exc})"
    else:
        reason = "no network to download it" if download else "download disabled"
    looked = ", ".join(str(r) for r in roots) or "nowhere (no --data-root given and ARCHGYM_DATA is unset)"
    raise ConfigError(
        f"Planetoid data set {folder!r} not found: put the files ind.{key}.{{x,y,tx,ty,allx,ally,graph,test.index}} "
        f"in <root>/{folder}/raw and pass --data-root <root> (or set ARCHGYM_DATA=<root>); looked in: {looked}; "
        f"{reason}. Without files, use dataset='synthetic'."
    )


def _with_classes(data: Data, num_classes: int) -> Data:
    data.num_classes = int(num_classes)
    return data


def synthetic_sbm(
    num_nodes: int = 400,
    num_classes: int = 4,
    num_features: int = 32,
    avg_degree: float = 6.0,
    homophily: float = 0.8,
    feature_signal: float = 0.35,
    train_per_class: int | None = None,
    val_fraction: float = 0.25,
    seed: int = 0,
) -> Data:
    """A stochastic-block-model graph whose classes are the blocks, with Gaussian features around a class mean.

    ``homophily`` is the expected fraction of edges inside a class; ``feature_signal`` scales the class means
    against unit noise, so features alone are only weakly informative and a GNN gains from the graph. Split:
    ``train_per_class`` labelled nodes per class (Planetoid's 20, fewer on graphs under 100 nodes per class),
    ``val_fraction`` of the nodes for validation, the rest for test.
    """
    if train_per_class is None:
        train_per_class = min(20, max(1, num_nodes // (5 * max(num_classes, 1))))
    checks = {"num_nodes": num_nodes >= 4 * num_classes, "num_classes": num_classes >= 2,
              "num_features": num_features >= 1, "avg_degree": avg_degree > 0, "homophily": 0.0 <= homophily <= 1.0,
              "train_per_class": train_per_class >= 1, "val_fraction": 0.0 < val_fraction < 1.0}
    for field, ok in checks.items():
        if not ok:
            raise ConfigError(f"synthetic data set: bad {field} (num_nodes >= 4*num_classes, num_classes >= 2, "
                              "avg_degree > 0, 0 <= homophily <= 1, 0 < val_fraction < 1)")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(num_nodes) % num_classes)
    block = num_nodes / num_classes
    p_in = min(1.0, avg_degree * homophily / max(block - 1, 1))
    p_out = min(1.0, avg_degree * (1 - homophily) / max(num_nodes - block, 1))
    iu, ju = np.triu_indices(num_nodes, k=1)
    same = y[iu] == y[ju]
    keep = rng.random(iu.size) < np.where(same, p_in, p_out)
    src, dst = iu[keep], ju[keep]
    edge_index = torch.from_numpy(np.stack([np.concatenate([src, dst]), np.concatenate([dst, src])])).long()
    means = rng.normal(0.0, 1.0, size=(num_classes, num_features))
    x = feature_signal * means[y] + rng.normal(0.0, 1.0, size=(num_nodes, num_features))

    train = np.zeros(num_nodes, dtype=bool)
    for c in range(num_classes):
        train[np.flatnonzero(y == c)[:train_per_class]] = True
    rest = rng.permutation(np.flatnonzero(~train))
    n_val = int(round(val_fraction * num_nodes))
    if n_val >= rest.size:
        raise ConfigError("synthetic data set: too few nodes for the requested train and validation sizes")
    val = np.zeros(num_nodes, dtype=bool)
    val[rest[:n_val]] = True
    test = ~(train | val)
    data = Data(x=torch.tensor(x, dtype=torch.float32), edge_index=edge_index, y=torch.from_numpy(y).long(),
                train_mask=torch.from_numpy(train), val_mask=torch.from_numpy(val), test_mask=torch.from_numpy(test))
    return _with_classes(data, num_classes)
