"""Honest evaluation of proxies: a held-out split and k-fold cross-validation on the rest, the fidelity figures
ArchGym reports (RMSE as % of the mean) and those that matter for search (Kendall tau), and learning curves."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archgym.errors import ConfigError
from archgym.proxies.features import Dataset
from archgym.proxies.proxy import Proxy

FIDELITY_KEYS = ("n", "rmse", "rmse_pct_mean", "rmse_pct_range", "mape", "r2", "kendall_tau")


def fidelity(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, RMSE as % of the mean (ArchGym's measure) and of the range, MAPE %, R^2, Kendall tau, and n."""
    from scipy.stats import kendalltau

    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    n = len(y_true)
    if n == 0:
        raise ConfigError("no samples to evaluate the proxy on")
    err = y_pred - y_true
    rmse = float(np.sqrt(np.mean(err**2)))
    mean, rng = float(np.mean(y_true)), float(np.ptp(y_true))
    nonzero = y_true != 0
    var = float(np.var(y_true))
    tau = float(kendalltau(y_true, y_pred).statistic) if n > 1 else math.nan
    return {
        "n": float(n),
        "rmse": rmse,
        "rmse_pct_mean": 100.0 * rmse / abs(mean) if mean != 0 else math.nan,
        "rmse_pct_range": 100.0 * rmse / rng if rng > 0 else math.nan,
        "mape": 100.0 * float(np.mean(np.abs(err[nonzero] / y_true[nonzero]))) if nonzero.any() else math.nan,
        "r2": 1.0 - float(np.mean(err**2)) / var if var > 0 else math.nan,
        "kendall_tau": tau,
    }


def split_indices(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split into training and held-out indices (``holdout`` is the held-out fraction)."""
    if not 0.0 <= holdout < 1.0:
        raise ConfigError(f"--holdout must be a fraction in [0, 1), got {holdout}")
    perm = np.random.default_rng(seed).permutation(n)
    n_test = int(round(holdout * n))
    if holdout > 0 and (n_test < 1 or n - n_test < 2):
        raise ConfigError(f"{n} samples are too few for a {holdout:.0%} held-out split")
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _fit(data: Dataset, idx: np.ndarray, model: str, log_target: bool, seed: int, model_args: dict[str, Any],
         encoding: str | None) -> Proxy:
    proxy = Proxy(data.space, data.target, model, encoding, log_target, seed, model_args)
    return proxy.fit([data.designs[i] for i in idx], data.y[idx])


def cross_validate(data: Dataset, idx: np.ndarray, k: int, model: str = "rf", log_target: bool = False, seed: int = 0,
                   model_args: dict[str, Any] | None = None, encoding: str | None = None) -> dict[str, Any]:
    """k-fold CV over the samples ``idx``: per-fold fidelity and the mean and standard deviation of each figure."""
    if k < 2:
        raise ConfigError(f"--cv must be at least 2 folds, got {k}")
    if len(idx) < 2 * k:
        raise ConfigError(f"{len(idx)} training samples are too few for {k}-fold cross-validation")
    folds = np.array_split(np.random.default_rng(seed + 1).permutation(idx), k)
    rows = []
    for f in range(k):
        test = folds[f]
        train = np.concatenate([folds[j] for j in range(k) if j != f])
        proxy = _fit(data, train, model, log_target, seed + f, model_args or {}, encoding)
        rows.append(fidelity(data.y[test], proxy.predict([data.designs[i] for i in test])))
    summary = {key: {"mean": float(np.nanmean([r[key] for r in rows])), "std": float(np.nanstd([r[key] for r in rows]))}
               for key in FIDELITY_KEYS}
    return {"k": k, "folds": rows, "summary": summary}


def train_and_evaluate(data: Dataset, model: str = "rf", cv: int = 5, holdout: float = 0.2, log_target: bool = False,
                       seed: int = 0, model_args: dict[str, Any] | None = None,
                       encoding: str | None = None) -> tuple[Proxy, dict[str, Any]]:
    """Hold out ``holdout`` of the samples, cross-validate on the rest (``cv`` folds; 0 skips it), then fit the
    proxy on the training part and score it on the held-out part: the returned proxy is exactly the one scored.
    With ``holdout=0`` the proxy is fitted on everything and only the CV figures describe it."""
    train, test = split_indices(len(data), holdout, seed)
    report: dict[str, Any] = {"model": model, "target": data.target, "log_target": log_target, "seed": seed,
                              "holdout_fraction": holdout, "n_train": int(len(train)), "n_test": int(len(test)),
                              **data.summary()}
    if cv:
        report["cv"] = cross_validate(data, train, cv, model, log_target, seed, model_args, encoding)
    proxy = _fit(data, train, model, log_target, seed, model_args or {}, encoding)
    if len(test):
        report["holdout"] = fidelity(data.y[test], proxy.predict([data.designs[i] for i in test]))
    proxy.meta.update({
        "env": data.env, "env_args": data.env_args, "training": data.summary(),
        "train_keys": [data.keys[i] for i in train], "evaluation": {k: v for k, v in report.items() if k != "sources"},
    })
    return proxy, report


def evaluate_on(proxy: Proxy, data: Dataset) -> dict[str, Any]:
    """Fidelity of a trained proxy on another log's samples: on all of them and on those it never trained on."""
    seen = set(proxy.meta.get("train_keys") or [])
    pred = proxy.predict(data.designs)
    out: dict[str, Any] = {"all": fidelity(data.y, pred), **data.summary()}
    unseen = np.array([k not in seen for k in data.keys])
    out["n_seen_in_training"] = int((~unseen).sum())
    if unseen.any() and (~unseen).any():
        out["unseen"] = fidelity(data.y[unseen], pred[unseen])
    return out


def learning_curve(data: Dataset, sizes: Sequence[int] | None = None, model: str = "rf", log_target: bool = False,
                   seed: int = 0, holdout: float = 0.2, model_args: dict[str, Any] | None = None,
                   encoding: str | None = None) -> list[dict[str, float]]:
    """Held-out fidelity against the number of training samples (nested random subsets of one training part)."""
    train, test = split_indices(len(data), holdout if holdout > 0 else 0.2, seed)
    if sizes is None:
        top = len(train)
        sizes = sorted({int(s) for s in np.geomspace(min(20, top), top, num=6)})
    order = np.random.default_rng(seed + 2).permutation(train)
    rows = []
    for n in sizes:
        if n < 2 or n > len(train):
            raise ConfigError(f"learning-curve size {n} is outside 2..{len(train)} (the training part)")
        proxy = _fit(data, order[:n], model, log_target, seed, model_args or {}, encoding)
        rows.append({"n_train": float(n), **fidelity(data.y[test], proxy.predict([data.designs[i] for i in test]))})
    return rows


def plot_learning_curve(rows: Sequence[dict[str, float]], path: str | Path, title: str = "") -> Path:
    """A PNG with RMSE % of mean and Kendall tau against training-set size."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["n_train"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(n, [r["rmse_pct_mean"] for r in rows], "o-", color="tab:blue", label="RMSE % of mean")
    ax.set_xscale("log")
    ax.set_xticks(n, [f"{v:,.0f}" for v in n])
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("training samples")
    ax.set_ylabel("held-out RMSE (% of mean)", color="tab:blue")
    ax2 = ax.twinx()
    ax2.plot(n, [r["kendall_tau"] for r in rows], "s--", color="tab:red", label="Kendall tau")
    ax2.set_ylabel("held-out Kendall tau", color="tab:red")
    ax.set_title(title or "proxy learning curve")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
