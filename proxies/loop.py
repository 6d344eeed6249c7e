"""Proxy in the loop: a Searcher wrapper that asks its inner searcher for many candidates, ranks them with a proxy
ensemble trained on the rewards seen so far (expected improvement or an upper confidence bound), sends only the best
to the real simulator, and retrains as results arrive."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from archgym.errors import ConfigError
from archgym.evaluator import TrialResult
from archgym.proxies.proxy import Proxy
from archgym.searcher import Searcher
from archgym.space import Design, DesignSpace

ACQUISITIONS = ("ei", "ucb", "mean")


def expected_improvement(mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.0) -> np.ndarray:
    """EI of a Gaussian belief N(mean, std^2) over the incumbent ``best`` (maximisation)."""
    from scipy.stats import norm

    gain = mean - best - xi
    safe = np.where(std > 1e-12, std, 1.0)
    z = gain / safe
    ei = gain * norm.cdf(z) + safe * norm.pdf(z)
    return np.where(std > 1e-12, ei, np.maximum(gain, 0.0))


def normal_scores(y: np.ndarray) -> np.ndarray:
    """Rank-based normal scores of ``y`` (ties share their mean rank): a monotone, outlier-proof target."""
    from scipy.stats import norm, rankdata

    return norm.ppf((rankdata(y) - 0.5) / len(y))


class ProxyLoopSearcher(Searcher):
    """Screens many candidates of an inner searcher with a proxy ensemble and simulates only the most promising."""

    name = "proxy-loop"
    hyperparameter_doc = {
        "inner": "the searcher whose proposals are screened (any registered name)",
        "inner_args": "hyperparameters of the inner searcher (a dict)",
        "model": "proxy ensemble: rf, gbm, mlp or gnn (gnn needs a DAG space)",
        "model_args": "hyperparameters of the proxy model (a dict)",
        "candidates": "candidates asked of the inner searcher per design sent to the real simulator",
        "acquisition": "ei (expected improvement), ucb (mean + kappa * std) or mean",
        "kappa": "UCB exploration weight",
        "xi": "EI improvement margin",
        "warmup": "designs the inner searcher picks unscreened before the first proxy is trained",
        "retrain_every": "retrain the proxy after this many new results",
        "transform": "target fed to the proxy: rank (normal scores of the reward ranks, robust to outliers) or none",
        "archive_size": "unsimulated candidates kept and re-ranked by each newer proxy",
        "encoding": "design features of the proxy (default: dag for DAG spaces, else full one-hot)",
    }

    def __init__(self, space: DesignSpace, seed: int = 0, inner: str = "random", inner_args: dict | None = None,
                 model: str = "rf", model_args: dict | None = None, candidates: int = 50, acquisition: str = "ei",
                 kappa: float = 1.0, xi: float = 0.0, warmup: int = 20, retrain_every: int = 10,
                 archive_size: int = 5000, encoding: str | None = None, transform: str = "rank") -> None:
        super().__init__(space, seed)
        from archgym.registry import make_searcher

        if acquisition not in ACQUISITIONS:
            raise ConfigError(f"proxy-loop: acquisition {acquisition!r} is not allowed; allowed: {', '.join(ACQUISITIONS)}")
        if transform not in ("rank", "none"):
            raise ConfigError(f"proxy-loop: transform {transform!r} is not allowed; allowed: rank, none")
        if candidates < 1 or warmup < 2 or retrain_every < 1 or archive_size < 0:
            raise ConfigError("proxy-loop: candidates and retrain_every must be >= 1, warmup >= 2 and archive_size "
                              f">= 0 (got candidates={candidates}, warmup={warmup}, retrain_every={retrain_every}, "
                              f"archive_size={archive_size})")
        if inner == self.name:
            raise ConfigError("proxy-loop cannot wrap itself; choose another inner searcher")
        if model_args is not None and not isinstance(model_args, dict):
            raise ConfigError(f"proxy-loop: model_args must be a dict, got {model_args!r}")
        self.inner = inner
        self.inner_args = inner_args
        self.model = model
        self.model_args = model_args
        self.candidates = candidates
        self.acquisition = acquisition
        self.kappa = kappa
        self.xi = xi
        self.warmup = warmup
        self.retrain_every = retrain_every
        self.archive_size = archive_size
        self.encoding = encoding
        self.transform = transform
        self.inner_searcher: Searcher = make_searcher(inner, space, seed=seed, **(inner_args or {}))
        self.multi_objective = False
        Proxy(space, "reward", model, encoding, model_args=model_args)  # refuse a bad model or space now
        self.designs: list[Design] = []
        self.rewards: list[float] = []
        self.evaluated: set[str] = set()
        self.trained_on = 0
        self._proxy: Proxy | None = None
        self.n_screened = 0
        self.archive: dict[str, Design] = {}
        self._feat: dict[str, Any] = {}

    # -- the proxy ------------------------------------------------------------------------------------------------

    def _train(self, n: int) -> Proxy:
        """Fit on the first ``n`` results (seeded by ``n``, so a resumed search retrains the identical model)."""
        proxy = Proxy(self.space, "reward", self.model, self.encoding, seed=self.seed + n, model_args=self.model_args)
        y = np.array(self.rewards[:n])
        self._proxy = proxy.fit(self.designs[:n], normal_scores(y) if self.transform == "rank" else y)
        self._best = float(normal_scores(y).max()) if self.transform == "rank" else float(y.max())
        self.trained_on = n
        return self._proxy

    def _current_proxy(self) -> Proxy:
        if len(self.rewards) - self.trained_on >= self.retrain_every or self.trained_on == 0:
            return self._train(len(self.rewards))
        if self._proxy is None:
            return self._train(self.trained_on)
        return self._proxy

    def score(self, designs: Sequence[Design]) -> np.ndarray:
        """The acquisition value of each design under the current proxy (higher is more worth simulating)."""
        return self._acquire(*self._current_proxy().predict_dist(list(designs)))  # in the proxy's target units

    # -- ask and tell -----------------------------------------------------------------------------------------

    def _features(self, proxy: Proxy, keys: list[str], designs: list[Design]) -> Any:
        """Model inputs of the archived candidates, computed once per design (the encoding never changes)."""
        todo = [(k, d) for k, d in zip(keys, designs) if k not in self._feat]
        if todo:
            for (k, _), f in zip(todo, proxy.features([d for _, d in todo])):
                self._feat[k] = f
        rows = [self._feat[k] for k in keys]
        return np.stack(rows) if proxy.regressor.inputs == "matrix" else rows

    def ask(self, n: int = 1) -> list[Design]:
        if len(self.rewards) < self.warmup:
            return self.inner_searcher.ask(n)
        new: list[Design] = []
        for _ in range(3):  # the inner searcher may repeat designs; ask again if too few candidates are left
            for d in self.inner_searcher.ask(n * self.candidates):
                k = self.space.key(d)
                if k not in self.evaluated and k not in self.archive:
                    self.archive[k] = d
                    new.append(d)
            if len(self.archive) >= n:
                break
        if not self.archive:
            return self.inner_searcher.ask(n)
        proxy = self._current_proxy()
        keys = list(self.archive)
        designs = [self.archive[k] for k in keys]
        mean, std = proxy.predict_dist(designs, self._features(proxy, keys, designs))
        scores = self._acquire(mean, std)
        order = np.argsort(-scores, kind="stable")
        chosen = [designs[i] for i in order[:n]]
        for i in order[:n]:
            del self.archive[keys[i]]
        if len(self.archive) > self.archive_size:  # forget the least promising unsimulated candidates
            for i in order[n + self.archive_size:]:
                self.archive.pop(keys[i], None)
                self._feat.pop(keys[i], None)
        pos = {k: i for i, k in enumerate(keys)}
        picked = {keys[i] for i in order[:n]}
        reward = self._to_reward(mean)
        screened = [(d, float(reward[pos[k]])) for d in new if (k := self.space.key(d)) not in picked]
        self._tell_screened(screened)
        if len(chosen) < n:
            chosen += self.inner_searcher.ask(n - len(chosen))
        return chosen

    def _to_reward(self, pred: np.ndarray) -> np.ndarray:
        """Proxy outputs in reward units (normal scores are mapped back through the observed rewards)."""
        if self.transform != "rank":
            return pred
        y = np.sort(np.array(self.rewards[:self.trained_on]))
        return np.interp(pred, np.sort(normal_scores(y)), y)

    def _acquire(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        if self.acquisition == "mean":
            return mean
        if self.acquisition == "ucb":
            return mean + self.kappa * std
        return expected_improvement(mean, std, self._best, self.xi)

    def _tell_screened(self, screened: list[tuple[Design, float]]) -> None:
        """Report the new candidates not simulated (yet) to the inner searcher, with the proxy's predicted reward and
        status ``screened`` (searchers that use only ``ok`` results ignore them)."""
        if not screened:
            return
        designs = [d for d, _ in screened]
        results = [TrialResult(d, self.space.key(d), "screened", p,
                               error="not simulated: screened out by the proxy; reward is its prediction")
                   for d, p in screened]
        self.inner_searcher.tell(designs, results)
        self.n_screened += len(designs)

    def tell(self, designs: Sequence[Design], results: Sequence[TrialResult]) -> None:
        super().tell(designs, results)
        for r in results:
            if r.status == "invalid" or r.reward is None or not math.isfinite(r.reward):
                continue
            self.designs.append(r.design)
            self.rewards.append(float(r.reward))
            self.evaluated.add(r.key)
        self.inner_searcher.tell(designs, results)

    # -- checkpoints ------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "inner": self.inner_searcher.state_dict(), "designs": self.designs,
                "rewards": self.rewards, "trained_on": self.trained_on, "n_screened": self.n_screened,
                "archive": list(self.archive.values())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.inner_searcher.load_state_dict(state["inner"])
        self.designs = list(state["designs"])
        self.rewards = [float(r) for r in state["rewards"]]
        self.evaluated = {self.space.key(d) for d in self.designs}
        self.trained_on = int(state["trained_on"])
        self.n_screened = int(state["n_screened"])
        self._proxy = None
        self.archive = {self.space.key(d): d for d in state["archive"]}
        self._feat = {}
