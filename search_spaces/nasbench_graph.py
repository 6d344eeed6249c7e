"""NAS-Bench-Graph's macro space: a 4-node DAG in which each node reads one earlier node (``in{i}`` in 0..i, where 0
is the input) and applies one GNN operation (``op{i}``). Isomorphic architectures share one canonical key, the
benchmark's own architecture hash."""

from __future__ import annotations

from functools import lru_cache

from archgym.errors import ConfigError
from archgym.space import Categorical, DesignSpace, Forbidden, dag_inputs

N_NODES = 4
OPS = ("gat", "gcn", "gin", "cheb", "sage", "arma", "graph", "fc", "skip")
OPS_PROTEINS = ("gcn", "sage", "arma", "fc", "skip")
DATASETS = ("cora", "citeseer", "pubmed", "cs", "photo", "physics", "computers", "arxiv", "proteins")


@lru_cache(maxsize=None)
def arch_hash(links: tuple[int, ...], ops: tuple[str, ...]) -> int:
    """The benchmark's hash of an architecture after removing isomorphic duplicates (its own canonicalisation)."""
    from nas_bench_graph.architecture import Arch

    return int(Arch(list(links), list(ops)).valid_hash())


class CanonicalKey:
    """Canonical key of a NAS-Bench-Graph design (picklable, so process workers can use it)."""

    __qualname__ = "nasbench_graph.CanonicalKey"

    def __call__(self, design: dict) -> str:
        return f"nbg:{arch_hash(design_links(design), design_ops(design))}"


def design_links(design: dict) -> tuple[int, ...]:
    return tuple(design[f"in{i}"] for i in range(N_NODES))


def design_ops(design: dict) -> tuple[str, ...]:
    return tuple(design[f"op{i}"] for i in range(N_NODES))


def make_space(dataset: str = "cora") -> DesignSpace:
    """The space for ``dataset`` (proteins has 5 operations, the others 9); an all-skip network is not allowed."""
    if dataset not in DATASETS:
        raise ConfigError(f"dataset {dataset!r} is not in NAS-Bench-Graph; allowed: {', '.join(DATASETS)}")
    ops = OPS_PROTEINS if dataset == "proteins" else OPS
    params = [*dag_inputs(N_NODES), *(Categorical(f"op{i}", ops) for i in range(N_NODES))]
    no_op = Forbidden(tuple((f"op{i}", "skip") for i in range(N_NODES)), reason="a network of only skip connections")
    return DesignSpace(params, [no_op], canonical=CanonicalKey(), name=f"nasbench_graph/{dataset}")
