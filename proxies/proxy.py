"""A Proxy: a regressor plus everything needed to use it honestly on designs: the DesignSpace (by fingerprint and
description), the encoding, the metric and its optional log transform. Saved as a directory holding ``proxy.json``
and the model's data file (skops or a torch state dict), never as arbitrary-code pickle."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from archgym.proxies.features import DagLayout, encode_designs
from archgym.proxies.models import MODEL_KINDS, Regressor, make_regressor

from archgym.errors import ConfigError, LogError
from archgym.log import json_default
from archgym.space import Design, DesignSpace

FORMAT = "archgym-proxy"
FORMAT_VERSION = 1
MANIFEST = "proxy.json"


def default_encoding(space: DesignSpace) -> str:
    """``dag`` (one-hot plus graph summary) for DAG spaces, else ``full`` (one-hot of every discrete parameter)."""
    try:
        DagLayout.detect(space)
    except ConfigError:
        return "full"
    return "dag"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Proxy:
    """A model of one metric over one DesignSpace; ``predict_dist`` returns mean and uncertainty in metric units."""

    def __init__(self, space: DesignSpace, metric: str, model: str = "rf", encoding: str | None = None,
                 log_target: bool = False, seed: int = 0, model_args: dict[str, Any] | None = None,
                 meta: dict[str, Any] | None = None) -> None:
        if model not in MODEL_KINDS:
            raise ConfigError(f"proxy model {model!r} is not known; allowed: {', '.join(MODEL_KINDS)}")
        self.space = space
        self.metric = metric
        self.kind = model
        self.model_args = dict(model_args or {})
        self.regressor: Regressor = make_regressor(model, seed=seed, **self.model_args)
        if self.regressor.inputs == "graph":
            encoding = "graph"
            self.layout: DagLayout | None = DagLayout.detect(space)
        else:
            encoding = encoding or default_encoding(space)
            if encoding == "graph":
                raise ConfigError(f"encoding 'graph' needs the gnn model, not {model!r}")
            self.layout = None
        self.encoding = encoding
        self.log_target = log_target
        self.seed = seed
        self.meta: dict[str, Any] = dict(meta or {})
        self.fitted = False

    # -- features and targets --------------------------------------------------------------------------------

    def features(self, designs: Sequence[Design]) -> Any:
        """The model's input for ``designs`` (a matrix, or graphs for the graph model)."""
        if self.layout is not None:
            return [self.layout.graph(d) for d in designs]
        return encode_designs(self.space, designs, self.encoding)

    def _forward_target(self, y: np.ndarray) -> np.ndarray:
        if not self.log_target:
            return np.asarray(y, dtype=np.float64)
        if np.any(np.asarray(y) <= 0):
            raise ConfigError(f"--log-target needs a positive target; {self.metric!r} has values <= 0")
        return np.log(np.asarray(y, dtype=np.float64))

    # -- fit and predict ------------------------------------------------------------------------------------------

    def fit(self, designs: Sequence[Design], y: np.ndarray) -> Proxy:
        """Fit on designs (validated members of ``space``) and their target values."""
        if len(designs) < 2:
            raise ConfigError(f"a proxy needs at least 2 training samples, got {len(designs)}")
        y = np.asarray(y, dtype=np.float64)
        self.regressor.fit(self.features(designs), self._forward_target(y))
        self.meta["target_stats"] = {"mean": float(y.mean()), "std": float(y.std()), "min": float(y.min()),
                                     "max": float(y.max()), "n": int(len(y))}
        self.fitted = True
        return self

    def predict_dist(self, designs: Sequence[Design], features: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation per design, in the metric's units (a log-target model's spread is mapped
        back with the log-normal mean and standard deviation). ``features`` may pass precomputed model inputs."""
        if not self.fitted:
            raise ConfigError("the proxy is not trained yet")
        if len(designs) == 0:
            return np.zeros(0), np.zeros(0)
        mu, sd = self.regressor.predict_dist(self.features(designs) if features is None else features)
        if not self.log_target:
            return mu, sd
        mean = np.exp(mu + 0.5 * sd**2)
        return mean, mean * np.sqrt(np.expm1(sd**2))

    def predict(self, designs: Sequence[Design]) -> np.ndarray:
        """Point predictions in the metric's units (for a log target: the back-transformed median)."""
        if not self.log_target:
            return self.predict_dist(designs)[0]
        mu, _ = self.regressor.predict_dist(self.features(designs))
        return np.exp(mu)

    # -- persistence ------------------------------------------------------------------------------------------------

    def manifest(self) -> dict[str, Any]:
        """The JSON description stored beside the model file."""
        return {
            "format": FORMAT, "version": FORMAT_VERSION, "model": self.kind, "model_config": self.regressor.config(),
            "model_args": self.model_args, "encoding": self.encoding, "metric": self.metric,
            "log_target": self.log_target, "seed": self.seed, "fingerprint": self.space.fingerprint(),
            "space": self.space.to_dict(), **self.meta,
        }

    def save(self, path: str | Path) -> Path:
        """Write the artefact directory ``path`` (created if needed; an existing artefact there is replaced)."""
        if not self.fitted:
            raise ConfigError("the proxy is not trained yet; nothing to save")
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ConfigError(f"--out {path} is a file; a proxy artefact is a directory")
        path.mkdir(parents=True, exist_ok=True)
        filename = self.regressor.save(path)
        manifest = {**self.manifest(), "files": {"model": filename, "sha256": _sha256(path / filename)}}
        (path / MANIFEST).write_text(json.dumps(manifest, indent=1, allow_nan=True, default=json_default))
        return path

    @classmethod
    def load(cls, path: str | Path, space: DesignSpace | None = None) -> Proxy:
        """Load an artefact. Without ``space`` the live space is rebuilt from the artefact's env; either way a
        space whose fingerprint differs from the one the proxy was trained on is refused."""
        manifest = read_manifest(path)
        path = Path(path)
        if space is None:
            from archgym.proxies.features import live_space

            if not manifest.get("env"):
                raise LogError(f"{path}: the artefact names no env; pass the DesignSpace explicitly")
            space = live_space(manifest["env"], manifest.get("env_args") or {}, None, str(path))
        check_fingerprint(manifest, space, str(path))
        proxy = cls(space, manifest["metric"], manifest["model"], manifest["encoding"], manifest["log_target"],
                    manifest.get("seed", 0), manifest.get("model_args") or {},
                    {k: v for k, v in manifest.items() if k not in _OWN_KEYS})
        proxy.regressor = make_regressor(manifest["model"], **manifest["model_config"])
        filename = manifest["files"]["model"]
        if Path(filename).name != filename or not (path / filename).is_file():
            raise LogError(f"{path}: model file {filename!r} is missing")
        if _sha256(path / filename) != manifest["files"]["sha256"]:
            raise LogError(f"{path}: {filename} does not match the checksum in {MANIFEST} (modified or corrupt)")
        proxy.regressor.load(path, filename)
        proxy.fitted = True
        return proxy


_OWN_KEYS = {"format", "version", "model", "model_config", "model_args", "encoding", "metric", "log_target", "seed",
             "fingerprint", "space", "files"}


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The ``proxy.json`` of an artefact directory, checked to be one."""
    path = Path(path)
    file = path / MANIFEST if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"no proxy artefact at {path} (expected a directory holding {MANIFEST})")
    try:
        manifest = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LogError(f"{file} is not a proxy manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise LogError(f"{file} is not an archgym proxy manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise LogError(f"{file} has proxy format version {manifest.get('version')}; this archgym reads {FORMAT_VERSION}")
    return manifest


def check_fingerprint(manifest: dict[str, Any], space: DesignSpace, where: str) -> None:
    """Refuse a space other than the one the proxy was trained on, saying which differ."""
    if manifest["fingerprint"] != space.fingerprint():
        raise ConfigError(
            f"proxy {where} was trained on design space {manifest['space'].get('name')!r} (fingerprint "
            f"{manifest['fingerprint']}) but the env's space is {space.name!r} (fingerprint {space.fingerprint()}); "
            "a proxy only serves the exact space it was trained on"
        )

