"""The registry of names: environments and searchers, each an import string resolved only when used, so that
``import archgym`` and ``archgym --help`` stay fast and heavy libraries load on demand."""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from archgym.errors import ConfigError
from archgym.objective import Objective
from archgym.simulator import Simulator
from archgym.space import DesignSpace


@dataclass
class Problem:
    """A design problem: a simulator (which carries its DesignSpace) and the objective to maximise."""

    name: str
    simulator: Simulator
    objective: Objective
    max_steps: int = 100
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def space(self) -> DesignSpace:
        return self.simulator.space


@dataclass(frozen=True)
class EnvEntry:
    """A registered environment: ``factory`` ("module:function") builds a Problem from keyword arguments."""

    factory: str
    description: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    extra: str | None = None  # the pip extra it needs, named in errors
    test_kwargs: Mapping[str, Any] = field(default_factory=dict)  # a cheap instance for the registry-wide tests


ENVS: dict[str, EnvEntry] = {
    "archgym/SCALESim-v0": EnvEntry(
        "archgym.simulators.scalesim:make_problem",
        "SCALE-Sim systolic array (rows, cols, SRAM KB, dataflow, DRAM bandwidth) on a workload (workload=tiny_cnn, "
        "small_cnn, resnet18, tiny_transformer, a topology .csv or an .onnx); reward = target spec on cycles and SRAM",
        {"workload": "tiny_cnn"},
        extra="scalesim",
        test_kwargs={"workload": "tiny_cnn", "array_sizes": [8, 16], "sram_kb": [4, 8], "bandwidths": [4, 8],
                     "target_cycles": 2000.0, "target_sram_kb": 24.0},
    ),
    "archgym/ZigZag-v0": EnvEntry(
        "archgym.simulators.zigzag:make_problem",
        "ZigZag DNN accelerator (array dims, memory sizes/bandwidths, mapping effort of a template: tpu_like, "
        "eyeriss_like, edge_tpu_like, ...) on a workload; reward = -log EDP",
        {"workload": "tiny_cnn", "template": "tpu_like"},
        extra="zigzag",
        test_kwargs={"workload": "tiny_cnn:conv1", "template": "tpu_like", "lpf_levels": [2]},
    ),
    "archgym/CoDesignNBG-v0": EnvEntry(
        "archgym.simulators.codesign:make_problem",
        "Co-design: a NAS-Bench-Graph GNN AND a ZigZag accelerator; metrics = benchmark accuracy + accelerator "
        "energy/latency on that GNN's layers; reward = accuracy vs EDP (or accuracy under a latency cap)",
        {"dataset": "cora", "template": "tpu_like"},
        extra="zigzag",
        test_kwargs={"dataset": "cora", "template": "tpu_like", "lpf_levels": [2]},
    ),
    "archgym/NASBenchGraph-v0": EnvEntry(
        "archgym.simulators.nasbench_graph:make_problem",
        "NAS-Bench-Graph tabular GNN benchmark (26,206 archs; 9 data sets); reward = validation accuracy",
        {"dataset": "cora"},
    ),
    "archgym/NASBenchGraphMO-v0": EnvEntry(
        "archgym.simulators.nasbench_graph:make_problem_mo",
        "NAS-Bench-Graph, multi-objective: validation accuracy vs latency",
        {"dataset": "cora"},
    ),
    "archgym/AGNN-v0": EnvEntry(
        "archgym.simulators.gnn_train:make_problem",
        "AGNN/GraphNAS macro space, each design really trained with PyG (dataset: synthetic, cora, citeseer, pubmed); "
        "reward = validation accuracy",
        {"dataset": "synthetic"},
        extra="torch",
        test_kwargs={"dataset": "synthetic", "synthetic_nodes": 60, "max_epochs": 2, "patience": 2},
    ),
    "archgym/TangleConv-v0": EnvEntry(
        "archgym.simulators.standalone_train:make_conv_problem",
        "TangleNAS conv macro space (5 layers x channels x kernel {3,5,7}), trained standalone (digits, fashion_mnist, "
        "cifar10); reward = validation accuracy; one-shot searchers: darts, drnas, gdas, spos",
        {"dataset": "digits"},
        extra="torch",
        test_kwargs={"epochs": 1, "max_train": 64, "channels": [4, 8], "kernels": [3, 5]},
    ),
    "archgym/TangleViT-v0": EnvEntry(
        "archgym.simulators.standalone_train:make_vit_problem",
        "TangleNAS AutoFormer-style ViT space (width, depth, heads and MLP ratio per layer), trained standalone; "
        "reward = validation accuracy",
        {"dataset": "digits"},
        extra="torch",
        test_kwargs={"epochs": 1, "max_train": 64, "embed_dims": [16, 32], "depths": [1, 2], "heads": [1, 2]},
    ),
    "archgym/TangleGPT-v0": EnvEntry(
        "archgym.simulators.standalone_train:make_gpt_problem",
        "TangleNAS NanoGPT-style character LM space (layers, heads, width, MLP ratio) on a UTF-8 text (default: "
        "Python's pydoc topics); reward = -validation loss",
        {},
        extra="torch",
        test_kwargs={"steps": 2, "max_chars": 20000, "embed_dims": [16, 32], "layers": [1, 2], "heads": [1, 2]},
    ),
}

SEARCHERS: dict[str, str] = {
    "random": "archgym.algorithms.random_search:RandomSearcher",
    "proxy-loop": "archgym.proxies.loop:ProxyLoopSearcher",
    "random_walk": "archgym.algorithms.random_walk:RandomWalkSearcher",
    "grid": "archgym.algorithms.grid:GridSearcher",
    "ga": "archgym.algorithms.evolution:GeneticSearcher",
    "regularized_evolution": "archgym.algorithms.evolution:RegularizedEvolutionSearcher",
    "aco": "archgym.algorithms.aco:ACOSearcher",
    "optuna_tpe": "archgym.algorithms.optuna_search:TPESearcher",
    "optuna_gp": "archgym.algorithms.optuna_search:GPSearcher",
    "optuna_cmaes": "archgym.algorithms.optuna_search:CMAESSearcher",
    "optuna_nsga2": "archgym.algorithms.optuna_search:NSGA2Searcher",
    "nni_tpe": "archgym.algorithms.nni_search:NNITPESearcher",
    "nni_evolution": "archgym.algorithms.nni_search:NNIEvolutionSearcher",
    "nni_anneal": "archgym.algorithms.nni_search:NNIAnnealSearcher",
    "ppo": "archgym.algorithms.ppo:PPOSearcher",
    "reinforce": "archgym.algorithms.reinforce:ReinforceSearcher",
    "agnn": "archgym.algorithms.reinforce:AGNNSearcher",
    "darts": "archgym.algorithms.oneshot:DARTS",
    "drnas": "archgym.algorithms.oneshot:DrNAS",
    "gdas": "archgym.algorithms.oneshot:GDAS",
    "spos": "archgym.algorithms.oneshot:SPOS",
}


def resolve(target: str, extra: str | None = None) -> Any:
    """Import ``module:attr``; a missing optional dependency becomes an error naming the extra to install."""
    module, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in ("archgym",):
            raise
        hint = f" (pip install 'archgym[{extra}]')" if extra else ""
        raise ConfigError(f"{target} needs the missing package {exc.name!r}{hint}") from None


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (numbers, booleans, lists, dicts), else the string itself."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        low = text.lower() if isinstance(text, str) else text
        if low in ("true", "false"):
            return low == "true"
        return text


def parse_kv(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """Parse ``k=v`` pairs from the command line (``what`` names the option in errors)."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} expects key=value, got {pair!r}")
        out[key.strip()] = parse_value(value.strip())
    return out


def check_kwargs(fn: Any, kwargs: Mapping[str, Any], what: str, skip: tuple[str, ...] = ()) -> None:
    """Refuse keyword arguments that ``fn`` does not take, listing the ones it does."""
    sig = inspect.signature(fn)
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    allowed = [n for n, p in sig.parameters.items() if n not in skip and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for k in kwargs:
        if k not in allowed:
            raise ConfigError(f"{what}: unknown argument {k!r}; allowed: {', '.join(allowed) or 'none'}")


def env_entry(env_id: str) -> EnvEntry:
    if env_id not in ENVS:
        raise ConfigError(f"unknown env {env_id!r}; registered: {', '.join(sorted(ENVS))}")
    return ENVS[env_id]


def make_problem(env_id: str, **kwargs: Any) -> Problem:
    """Build the Problem registered as ``env_id`` with its defaults overridden by ``kwargs``."""
    entry = env_entry(env_id)
    factory = resolve(entry.factory, entry.extra)
    check_kwargs(factory, kwargs, f"env {env_id}")
    try:
        return factory(**{**entry.defaults, **kwargs})
    except TypeError as exc:
        raise ConfigError(f"env {env_id}: {exc}") from None


def searcher_class(name: str) -> type:
    if name not in SEARCHERS:
        raise ConfigError(f"unknown searcher {name!r}; registered: {', '.join(sorted(SEARCHERS))}")
    return resolve(SEARCHERS[name])


def make_searcher(name: str, space: DesignSpace, seed: int = 0, **hparams: Any):
    """Build searcher ``name`` on ``space``; unknown hyperparameters are refused with the allowed list."""
    cls = searcher_class(name)
    check_kwargs(cls.__init__, hparams, f"searcher {name}", skip=("self", "space", "seed"))
    return cls(space, seed=seed, **hparams)


def register_gymnasium() -> None:
    """Register every env id with Gymnasium (lazily: nothing is imported until ``gymnasium.make``)."""
    import gymnasium

    for env_id in ENVS:
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point="archgym.env:make_env", kwargs={"env_id": env_id})
