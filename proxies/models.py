"""Proxy regressors: a random forest and a gradient-boosting ensemble (scikit-learn, saved with skops and a trusted-
types list), plus the torch MLP and graph ensembles of ``torch_models``. Each gives a mean and an uncertainty (the
spread of its ensemble members) and saves itself as data, never as arbitrary-code pickle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from archgym.errors import ConfigError, LogError

MODEL_KINDS = ("rf", "gbm", "mlp", "gnn")

# skops types (beyond scikit-learn's defaults) that a proxy file may contain; any other type is refused on load.
TRUSTED_SKOPS_TYPES = (
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)


class Regressor:
    """A fitted-or-not model of one (already transformed) target. ``inputs`` is ``"matrix"`` (a float feature
    matrix) or ``"graph"`` (DAG designs turned into graphs by the Proxy)."""

    kind = "regressor"
    inputs = "matrix"

    def fit(self, X: Any, y: np.ndarray) -> Regressor:
        raise NotImplementedError

    def predict_dist(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (spread across ensemble members) per row."""
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Hyperparameters that rebuild an unfitted twin (stored in the artefact's JSON)."""
        raise NotImplementedError

    def save(self, directory: Path) -> str:
        """Write the fitted parameters into ``directory``; returns the file name."""
        raise NotImplementedError

    def load(self, directory: Path, filename: str) -> Regressor:
        raise NotImplementedError


class _SkopsRegressor(Regressor):
    """Shared skops persistence: the file is refused if it names a type outside the trusted list."""

    def _payload(self) -> Any:
        raise NotImplementedError

    def _restore(self, payload: Any) -> None:
        raise NotImplementedError

    def save(self, directory: Path) -> str:
        import skops.io as sio

        sio.dump(self._payload(), directory / "model.skops")
        return "model.skops"

    def load(self, directory: Path, filename: str) -> Regressor:
        import skops.io as sio

        path = directory / filename
        untrusted = sio.get_untrusted_types(file=path)
        refused = [t for t in untrusted if t not in TRUSTED_SKOPS_TYPES]
        if refused:
            raise LogError(f"{path} contains types that a proxy file may not hold: {', '.join(refused)}")
        self._restore(sio.load(path, trusted=list(untrusted)))
        return self


class ForestRegressor(_SkopsRegressor):
    """Random forest (ArchGym's proxy); uncertainty is the spread of the per-tree predictions."""

    kind = "rf"

    def __init__(self, n_estimators: int = 200, min_samples_leaf: int = 1, max_features: float = 0.5,
                 seed: int = 0) -> None:
        self.n_estimators = n_estimators
        self.min_samples_leaf = min_samples_leaf
        self.max_features = max_features
        self.seed = seed
        self.model: Any = None

    def config(self) -> dict[str, Any]:
        return {"n_estimators": self.n_estimators, "min_samples_leaf": self.min_samples_leaf,
                "max_features": self.max_features, "seed": self.seed}

    def fit(self, X: np.ndarray, y: np.ndarray) -> ForestRegressor:
        from sklearn.ensemble import RandomForestRegressor

        self.model = RandomForestRegressor(n_estimators=self.n_estimators, min_samples_leaf=self.min_samples_leaf,
                                           max_features=self.max_features, random_state=self.seed, n_jobs=1)
        self.model.fit(X, y)
        return self

    def predict_dist(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X32 = np.ascontiguousarray(X, dtype=np.float32)  # the trees' own dtype; skips per-tree input checks
        per_tree = np.stack([t.tree_.predict(X32).reshape(len(X32)) for t in self.model.estimators_])
        return per_tree.mean(axis=0), per_tree.std(axis=0)

    def _payload(self) -> Any:
        return self.model

    def _restore(self, payload: Any) -> None:
        self.model = payload


class BoostingRegressor(_SkopsRegressor):
    """An ensemble of histogram gradient-boosting models, each fitted on a bootstrap resample with its own seed;
    the mean is the ensemble's and the uncertainty their spread."""

    kind = "gbm"

    def __init__(self, n_members: int = 5, max_iter: int = 300, learning_rate: float = 0.05, max_leaf_nodes: int = 31,
                 min_samples_leaf: int = 5, seed: int = 0) -> None:
        self.n_members = n_members
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.seed = seed
        self.members: list[Any] = []

    def config(self) -> dict[str, Any]:
        return {"n_members": self.n_members, "max_iter": self.max_iter, "learning_rate": self.learning_rate,
                "max_leaf_nodes": self.max_leaf_nodes, "min_samples_leaf": self.min_samples_leaf, "seed": self.seed}

    def fit(self, X: np.ndarray, y: np.ndarray) -> BoostingRegressor:
        from sklearn.ensemble import HistGradientBoostingRegressor

        rng = np.random.default_rng(self.seed)
        self.members = []
        for k in range(self.n_members):
            idx = rng.integers(0, len(y), len(y)) if self.n_members > 1 else np.arange(len(y))
            m = HistGradientBoostingRegressor(max_iter=self.max_iter, learning_rate=self.learning_rate,
                                              max_leaf_nodes=self.max_leaf_nodes, early_stopping=False,
                                              min_samples_leaf=self.min_samples_leaf,
                                              random_state=self.seed + k)
            self.members.append(m.fit(X[idx], y[idx]))
        return self

    def predict_dist(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        preds = np.stack([m.predict(X) for m in self.members])
        return preds.mean(axis=0), preds.std(axis=0)

    def _payload(self) -> Any:
        return list(self.members)

    def _restore(self, payload: Any) -> None:
        self.members = list(payload)


def make_regressor(kind: str, seed: int = 0, **kwargs: Any) -> Regressor:
    """A fresh regressor of ``kind`` (rf, gbm, mlp, gnn) with hyperparameters ``kwargs``."""
    if kind == "rf":
        cls: Any = ForestRegressor
    elif kind == "gbm":
        cls = BoostingRegressor
    elif kind in ("mlp", "gnn"):
        try:
            from archgym.proxies import torch_models
        except ModuleNotFoundError as exc:
            raise ConfigError(f"proxy model {kind} needs the missing package {exc.name!r} "
                              "(pip install 'archgym[torch]')") from None
        cls = torch_models.MLPEnsembleRegressor if kind == "mlp" else torch_models.GraphEnsembleRegressor
    else:
        raise ConfigError(f"proxy model {kind!r} is not known; allowed: {', '.join(MODEL_KINDS)}")
    from archgym.registry import check_kwargs

    check_kwargs(cls.__init__, kwargs, f"proxy model {kind}", skip=("self", "seed"))
    return cls(seed=seed, **kwargs)
