"""DesignSpace: the one description of a design problem's parameters, from which sampling, validation, encodings,
mutation, canonical keys and every other library's search-space format are derived.

A *design* is a plain ``dict`` that maps the name of every **active** parameter to its value; a conditional parameter
whose condition does not hold is absent from the design. Values are plain Python scalars (str, int, float, bool).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from archgym.errors import InvalidDesignError

Design = dict[str, Any]

_MAX_TRIES = 1000


def _plain(value: Any) -> Any:
    """Turn numpy scalars into the Python scalars that designs hold, so keys and logs are plain JSON."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _short(values: Sequence[Any], limit: int = 12) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


# --------------------------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """Base of all parameters. ``when`` maps parent names to the values under which this parameter is active."""

    name: str
    when: Mapping[str, tuple] | None = field(default=None, kw_only=True)

    kind = "param"

    def active(self, design: Mapping[str, Any]) -> bool:
        """True when every parent named in ``when`` is present and holds one of the listed values."""
        if not self.when:
            return True
        return all(parent in design and design[parent] in allowed for parent, allowed in self.when.items())

    @property
    def discrete(self) -> bool:
        return True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "name": self.name}
        if self.when:
            out["when"] = {k: list(v) for k, v in self.when.items()}
        return out


class _Discrete(Param):
    """A parameter with finitely many values addressed by index 0..cardinality-1."""

    @property
    def values(self) -> tuple:
        raise NotImplementedError

    @property
    def cardinality(self) -> int:
        return len(self.values)

    def index(self, value: Any) -> int:
        try:
            return self._index_map()[value]
        except (KeyError, TypeError):
            raise InvalidDesignError(
                f"parameter {self.name!r}: value {value!r} is not allowed; allowed values: {_short(self.values)}"
            ) from None

    def _index_map(self) -> dict[Any, int]:
        cache = self.__dict__.get("_imap")
        if cache is None:
            cache = {v: i for i, v in enumerate(self.values)}
            object.__setattr__(self, "_imap", cache)
        return cache

    def value_at(self, index: int) -> Any:
        return self.values[index]

    def check(self, value: Any) -> Any:
        self.index(value)
        return _plain(value)

    def sample(self, rng: np.random.Generator) -> Any:
        return self.values[int(rng.integers(self.cardinality))]

    def neighbour(self, value: Any, rng: np.random.Generator) -> Any:
        """A different value: a random other choice (categorical) or an adjacent step (ordered kinds)."""
        k = self.cardinality
        if k < 2:
            return value
        i = self.index(value)
        j = int(rng.integers(k - 1))
        return self.values[j if j < i else j + 1]


@dataclass(frozen=True)
class Categorical(_Discrete):
    """Unordered choices, e.g. an operation name."""

    choices: tuple = ()
    kind = "categorical"

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(_plain(c) for c in self.choices))
        if not self.choices:
            raise ValueError(f"parameter {self.name!r}: needs at least one choice")

    @property
    def values(self) -> tuple:
        return self.choices

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "choices": list(self.choices)}


@dataclass(frozen=True)
class Ordinal(_Discrete):
    """Ordered numeric choices such as powers of two; mutation moves to a neighbouring value."""

    levels: tuple = ()
    kind = "ordinal"

    def __post_init__(self) -> None:
        object.__setattr__(self, "levels", tuple(_plain(v) for v in self.levels))
        if not self.levels:
            raise ValueError(f"parameter {self.name!r}: needs at least one value")
        if list(self.levels) != sorted(self.levels):
            raise ValueError(f"parameter {self.name!r}: ordinal values must be sorted ascending")

    @property
    def values(self) -> tuple:
        return self.levels

    def neighbour(self, value: Any, rng: np.random.Generator) -> Any:
        k, i = self.cardinality, self.index(value)
        if k < 2:
            return value
        step = 1 if i == 0 else -1 if i == k - 1 else int(rng.choice((-1, 1)))
        return self.levels[i + step]

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "values": list(self.levels)}


@dataclass(frozen=True)
class Integer(_Discrete):
    """An integer in ``[low, high]`` (both inclusive)."""

    low: int = 0
    high: int = 0
    kind = "integer"

    def __post_init__(self) -> None:
        if self.high < self.low:
            raise ValueError(f"parameter {self.name!r}: high {self.high} < low {self.low}")

    @property
    def values(self) -> tuple:
        return tuple(range(self.low, self.high + 1))

    @property
    def cardinality(self) -> int:
        return self.high - self.low + 1

    def index(self, value: Any) -> int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not (
            self.low <= value <= self.high
        ):
            raise InvalidDesignError(
                f"parameter {self.name!r}: value {value!r} is not allowed; allowed: integers {self.low}..{self.high}"
            )
        return int(value) - self.low

    def value_at(self, index: int) -> int:
        return self.low + int(index)

    def sample(self, rng: np.random.Generator) -> int:
        return int(rng.integers(self.low, self.high + 1))

    def neighbour(self, value: Any, rng: np.random.Generator) -> Any:
        if self.cardinality < 2:
            return value
        step = int(rng.choice((-1, 1)))
        v = int(value) + step
        return v if self.low <= v <= self.high else int(value) - step

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Float(Param):
    """A real number in ``[low, high]``, optionally searched on a log scale."""

    low: float = 0.0
    high: float = 1.0
    log: bool = False
    kind = "float"

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"parameter {self.name!r}: high {self.high} must exceed low {self.low}")
        if self.log and self.low <= 0:
            raise ValueError(f"parameter {self.name!r}: a log-scale float needs low > 0")

    @property
    def discrete(self) -> bool:
        return False

    def check(self, value: Any) -> float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
            self.low <= value <= self.high
        ):
            raise InvalidDesignError(
                f"parameter {self.name!r}: value {value!r} is not allowed; allowed: real numbers in "
                f"[{self.low}, {self.high}]{' (log scale)' if self.log else ''}"
            )
        return float(value)

    def to_unit(self, value: float) -> float:
        if self.log:
            return (math.log(value) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, u: float) -> float:
        u = min(max(float(u), 0.0), 1.0)
        if self.log:
            return float(math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low))))
        return float(self.low + u * (self.high - self.low))

    def sample(self, rng: np.random.Generator) -> float:
        return self.from_unit(float(rng.random()))

    def neighbour(self, value: float, rng: np.random.Generator, scale: float = 0.1) -> float:
        return self.from_unit(self.to_unit(value) + float(rng.normal(0.0, scale)))

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "low": self.low, "high": self.high, "log": self.log}


# --------------------------------------------------------------------------------------------------------------------
# Constraints (declarative: each is a small object, never a string to eval)
# --------------------------------------------------------------------------------------------------------------------


class Constraint:
    """A rule across parameters. ``violation`` returns None when satisfied, else a readable reason."""

    params: tuple[str, ...] = ()

    def violation(self, design: Mapping[str, Any]) -> str | None:
        raise NotImplementedError

    def allowed(self, name: str, partial: Mapping[str, Any], values: Sequence[Any]) -> list[Any]:
        """Values of ``name`` that keep this rule satisfiable given the already decided ``partial`` design."""
        out = []
        for v in values:
            trial = {**partial, name: v}
            if all(p in trial for p in self.params) or self._decided_only:
                if self.violation({k: trial[k] for k in self.params if k in trial}) is not None:
                    continue
            out.append(v)
        return out

    _decided_only = False

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class Monotone(Constraint):
    """The listed parameters (those active) never decrease (or never increase) in the given order."""

    params: tuple[str, ...]
    increasing: bool = True
    strict: bool = False

    _decided_only = True

    def violation(self, design: Mapping[str, Any]) -> str | None:
        seq = [(p, design[p]) for p in self.params if p in design]
        for (pa, a), (pb, b) in itertools.pairwise(seq):
            ok = (a < b if self.strict else a <= b) if self.increasing else (a > b if self.strict else a >= b)
            if not ok:
                rel = ("<" if self.strict else "<=") if self.increasing else (">" if self.strict else ">=")
                return f"constraint {pa} {rel} {pb} violated: {pa}={a!r}, {pb}={b!r}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "monotone", "params": list(self.params), "increasing": self.increasing, "strict": self.strict}


@dataclass(frozen=True)
class Equal(Constraint):
    """Two parameters must hold the same value whenever both are active."""

    a: str
    b: str

    _decided_only = True

    @property
    def params(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.a, self.b)

    def violation(self, design: Mapping[str, Any]) -> str | None:
        if self.a in design and self.b in design and design[self.a] != design[self.b]:
            return f"constraint {self.a} == {self.b} violated: {self.a}={design[self.a]!r}, {self.b}={design[self.b]!r}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "equal", "a": self.a, "b": self.b}


@dataclass(frozen=True)
class Forbidden(Constraint):
    """One combination of values that is not allowed (every listed parameter at its listed value)."""

    assignment: tuple[tuple[str, Any], ...]
    reason: str = ""

    @property
    def params(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(k for k, _ in self.assignment)

    def violation(self, design: Mapping[str, Any]) -> str | None:
        if all(design.get(k, _MISSING) == v for k, v in self.assignment):
            what = ", ".join(f"{k}={v!r}" for k, v in self.assignment)
            return f"forbidden combination {what}" + (f" ({self.reason})" if self.reason else "")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "forbidden", "assignment": [list(x) for x in self.assignment], "reason": self.reason}


@dataclass(frozen=True)
class Predicate(Constraint):
    """A rule written as a Python function of the design; ``description`` is what errors and fingerprints show."""

    fn: Callable[[Mapping[str, Any]], bool]
    description: str
    params: tuple[str, ...] = ()

    def violation(self, design: Mapping[str, Any]) -> str | None:
        return None if self.fn(design) else f"constraint violated: {self.description}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "predicate", "description": self.description, "params": list(self.params)}


_MISSING = object()


# --------------------------------------------------------------------------------------------------------------------
# Builders for structured spaces
# --------------------------------------------------------------------------------------------------------------------


def layered(depth: str, max_depth: int, template: Sequence[Param], prefix: str = "layer", min_depth: int = 1) -> list[Param]:
    """Per-layer copies of ``template`` for a variable depth: ``layer{i}_{name}`` is active when ``depth > i``."""
    out: list[Param] = []
    for i in range(max_depth):
        active_depths = tuple(range(max(i + 1, min_depth), max_depth + 1))
        for p in template:
            cond = dict(p.when or {})
            if i + 1 > min_depth:
                cond[depth] = active_depths
            renamed = {k: v for k, v in p.__dict__.items() if k not in ("name", "when", "_imap")}
            out.append(type(p)(f"{prefix}{i}_{p.name}", **renamed, when=cond or None))
    return out


def dag_inputs(n_nodes: int, prefix: str = "in") -> list[Integer]:
    """A DAG as input-index lists: node ``i`` (1-based after the input node 0) reads one of the nodes ``0..i-1``."""
    return [Integer(f"{prefix}{i}", 0, i) for i in range(n_nodes)]


# --------------------------------------------------------------------------------------------------------------------
# The space
# --------------------------------------------------------------------------------------------------------------------


class DesignSpace:
    """Named, typed parameters with conditions and constraints; the single source of truth for a design problem."""

    def __init__(
        self,
        params: Sequence[Param],
        constraints: Sequence[Constraint] = (),
        canonical: Callable[[Design], str] | None = None,
        name: str = "space",
    ) -> None:
        self.params: dict[str, Param] = {}
        for p in params:
            if p.name in self.params:
                raise ValueError(f"duplicate parameter name {p.name!r}")
            for parent in p.when or {}:
                if parent not in self.params:
                    raise ValueError(f"parameter {p.name!r} is conditional on {parent!r}, which must be declared before it")
            self.params[p.name] = p
        for c in constraints:
            for n in c.params:
                if n not in self.params:
                    raise ValueError(f"constraint {c.to_dict()} names unknown parameter {n!r}")
        self.constraints = tuple(constraints)
        self.canonical = canonical
        self.name = name
        self._has_conditions = any(p.when for p in self.params.values())

    # -- basic facts ---------------------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.params)

    @property
    def discrete(self) -> bool:
        return all(p.discrete for p in self.params.values())

    def __len__(self) -> int:
        return len(self.params)

    def __repr__(self) -> str:
        return f"DesignSpace({self.name!r}, {len(self.params)} params, {len(self.constraints)} constraints)"

    def describe(self) -> list[str]:
        """One line per parameter (and constraint) for listings such as ``archgym envs``."""
        lines = []
        for p in self.params.values():
            if isinstance(p, Float):
                dom = f"[{p.low}, {p.high}]{' log' if p.log else ''}"
            elif isinstance(p, Integer):
                dom = f"{p.low}..{p.high}"
            else:
                dom = _short(p.values, 8)  # type: ignore[attr-defined]
            cond = f" if {', '.join(f'{k} in {_short(list(v), 4)}' for k, v in p.when.items())}" if p.when else ""
            lines.append(f"{p.name}: {p.kind} {dom}{cond}")
        lines += [f"constraint: {c.to_dict()}" for c in self.constraints]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": [p.to_dict() for p in self.params.values()],
            "constraints": [c.to_dict() for c in self.constraints],
            "canonical": getattr(self.canonical, "__qualname__", None) if self.canonical else None,
        }

    def fingerprint(self) -> str:
        """A short hash of the space's full description: proxies and logs refuse a space with another fingerprint."""
        blob = json.dumps(self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def cardinality(self) -> float:
        """Upper bound on the number of designs (product of all cardinalities; inf with a float parameter)."""
        total = 1.0
        for p in self.params.values():
            if not p.discrete:
                return math.inf
            total *= p.cardinality  # type: ignore[attr-defined]
        return total

    def size(self, limit: int = 2_000_000) -> int:
        """The exact number of valid designs, by enumeration; refuses spaces whose bound exceeds ``limit``."""
        bound = self.cardinality()
        if bound > limit:
            raise InvalidDesignError(
                f"space {self.name!r} has up to {bound:.3g} designs, more than the enumeration limit {limit:,}"
            )
        return sum(1 for _ in self.enumerate(limit))

    def enumerate(self, limit: int = 2_000_000) -> Iterator[Design]:
        """Every valid design in a fixed order (refuses spaces whose bound exceeds ``limit``)."""
        bound = self.cardinality()
        if bound > limit:
            raise InvalidDesignError(
                f"space {self.name!r} has up to {bound:.3g} designs, more than the enumeration limit {limit:,}"
            )
        params = list(self.params.values())

        def rec(i: int, partial: Design) -> Iterator[Design]:
            if i == len(params):
                if self._violation(partial) is None:
                    yield dict(partial)
                return
            p = params[i]
            if not p.active(partial):
                yield from rec(i + 1, partial)
                return
            for v in p.values:  # type: ignore[attr-defined]
                partial[p.name] = v
                yield from rec(i + 1, partial)
            del partial[p.name]

        yield from rec(0, {})

    # -- validation and keys -------------------------------------------------------------------------------------

    def _violation(self, design: Mapping[str, Any]) -> str | None:
        for c in self.constraints:
            msg = c.violation(design)
            if msg is not None:
                return msg
        return None

    def validate(self, design: Mapping[str, Any]) -> Design:
        """Check a design and return it normalised (plain scalars, only active parameters, declared order).

        Raises InvalidDesignError naming the parameter, the value and what is allowed.
        """
        if not isinstance(design, Mapping):
            raise InvalidDesignError(f"a design must be a mapping of parameter names to values, got {type(design).__name__}")
        for name in design:
            if name not in self.params:
                raise InvalidDesignError(f"unknown parameter {name!r}; parameters of {self.name!r}: {', '.join(self.params)}")
        out: Design = {}
        for name, p in self.params.items():
            if self._has_conditions and not p.active(out):
                if name in design:
                    raise InvalidDesignError(f"parameter {name!r} is inactive here (active only if {dict(p.when or {})})")
                continue
            if name not in design:
                raise InvalidDesignError(f"missing parameter {name!r}")
            out[name] = p.check(design[name])  # type: ignore[attr-defined]
        msg = self._violation(out)
        if msg is not None:
            raise InvalidDesignError(msg)
        return out

    def is_valid(self, design: Mapping[str, Any]) -> bool:
        try:
            self.validate(design)
        except InvalidDesignError:
            return False
        return True

    def key(self, design: Design) -> str:
        """The canonical key of a validated design: equal keys mean the same architecture (isomorphs included)."""
        if self.canonical is not None:
            return self.canonical(design)
        return json.dumps(design, separators=(",", ":"))

    # -- sampling and variation ----------------------------------------------------------------------------------

    def _complete(self, partial: Design, rng: np.random.Generator) -> Design:
        """Fill missing active parameters at random and drop inactive ones, in declared order."""
        out: Design = {}
        for name, p in self.params.items():
            if not p.active(out):
                continue
            out[name] = partial[name] if name in partial else p.sample(rng)  # type: ignore[attr-defined]
        return out

    def sample(self, rng: np.random.Generator) -> Design:
        """A uniformly drawn valid design (rejection sampling against the constraints)."""
        last = None
        for _ in range(_MAX_TRIES):
            d = self._complete({}, rng)
            last = self._violation(d)
            if last is None:
                return d
        raise InvalidDesignError(f"could not sample a valid design of {self.name!r} in {_MAX_TRIES} tries; last: {last}")

    def mutate(self, design: Design, rng: np.random.Generator, n_changes: int = 1) -> Design:
        """A valid neighbour that differs in ``n_changes`` randomly chosen active parameters (plus what they enable)."""
        for _ in range(_MAX_TRIES):
            d = dict(design)
            names = list(d)
            for name in rng.choice(names, size=min(n_changes, len(names)), replace=False):
                d[name] = self.params[str(name)].neighbour(d[name], rng)  # type: ignore[attr-defined]
            d = self._complete(d, rng)
            if d != design and self._violation(d) is None:
                return d
        return dict(design)

    def crossover(self, a: Design, b: Design, rng: np.random.Generator) -> Design:
        """Uniform crossover: each parameter from either parent; returns a valid child (falls back to ``a``)."""
        for _ in range(100):
            mix = {}
            for name in self.params:
                src = a if rng.random() < 0.5 else b
                if name in src:
                    mix[name] = src[name]
                elif name in a or name in b:
                    mix[name] = (a if name in a else b)[name]
            child = self._complete(mix, rng)
            if self._violation(child) is None:
                return child
        return dict(a)

    # -- encodings -----------------------------------------------------------------------------------------------

    def encode(self, design: Design, kind: str = "index") -> np.ndarray:
        """Encode a design as ``index`` (one entry per param; -1 if inactive), ``onehot`` or ``unit`` (in [0,1])."""
        if kind == "index":
            return np.array(
                [
                    (p.index(design[n]) if p.discrete else design[n]) if n in design else -1  # type: ignore[attr-defined]
                    for n, p in self.params.items()
                ],
                dtype=float,
            )
        if kind == "unit":
            out = []
            for n, p in self.params.items():
                if n not in design:
                    out.append(0.0)
                elif p.discrete:
                    out.append((p.index(design[n]) + 0.5) / p.cardinality)  # type: ignore[attr-defined]
                else:
                    out.append(p.to_unit(design[n]))  # type: ignore[attr-defined]
            return np.array(out, dtype=float)
        if kind == "onehot":
            parts = []
            for n, p in self.params.items():
                if isinstance(p, Categorical):
                    v = np.zeros(p.cardinality)
                    if n in design:
                        v[p.index(design[n])] = 1.0
                    parts.append(v)
                elif p.discrete:
                    parts.append(np.array([(p.index(design[n]) + 0.5) / p.cardinality if n in design else 0.0]))  # type: ignore[attr-defined]
                else:
                    parts.append(np.array([p.to_unit(design[n]) if n in design else 0.0]))  # type: ignore[attr-defined]
            return np.concatenate(parts) if parts else np.zeros(0)
        raise InvalidDesignError(f"encoding kind {kind!r} is not known; allowed: 'index', 'onehot', 'unit'")

    def encoding_names(self, kind: str = "index") -> list[str]:
        """Column names matching ``encode(design, kind)``."""
        if kind != "onehot":
            return list(self.params)
        names = []
        for n, p in self.params.items():
            if isinstance(p, Categorical):
                names += [f"{n}={c}" for c in p.choices]
            else:
                names.append(n)
        return names

    def decode(self, vector: Sequence[float], kind: str = "unit") -> Design:
        """Inverse of ``encode`` for ``unit`` and ``index`` vectors; inactive entries are ignored.

        The result respects conditions but not necessarily constraints; ``validate`` tells.
        """
        vec = np.asarray(vector, dtype=float)
        if vec.shape != (len(self.params),):
            raise InvalidDesignError(f"expected a vector of {len(self.params)} entries for {self.name!r}, got shape {vec.shape}")
        out: Design = {}
        for x, (name, p) in zip(vec, self.params.items()):
            if not p.active(out):
                continue
            if kind == "unit":
                if p.discrete:
                    k = p.cardinality  # type: ignore[attr-defined]
                    out[name] = p.value_at(min(int(np.clip(x, 0.0, 1.0) * k), k - 1))  # type: ignore[attr-defined]
                else:
                    out[name] = p.from_unit(x)  # type: ignore[attr-defined]
            elif kind == "index":
                if p.discrete:
                    i = int(round(x))
                    if not 0 <= i < p.cardinality:  # type: ignore[attr-defined]
                        raise InvalidDesignError(
                            f"parameter {name!r}: index {i} is out of range 0..{p.cardinality - 1}"  # type: ignore[attr-defined]
                        )
                    out[name] = p.value_at(i)  # type: ignore[attr-defined]
                else:
                    out[name] = p.check(float(x))  # type: ignore[attr-defined]
            else:
                raise InvalidDesignError(f"decoding kind {kind!r} is not known; allowed: 'unit', 'index'")
        return out

    def project(self, config: Mapping[str, Any]) -> Design:
        """Keep only the active parameters of a full assignment (as flat Ray Tune / NNI configs give) and validate."""
        out: Design = {}
        for name, p in self.params.items():
            if p.active(out):
                if name not in config:
                    raise InvalidDesignError(f"missing parameter {name!r}")
                out[name] = config[name]
        return self.validate(out)

    # -- other libraries' formats --------------------------------------------------------------------------------

    def to_gymnasium(self):
        """The one-shot action space: MultiDiscrete of indices for discrete spaces, else a unit Box."""
        from gymnasium import spaces

        if self.discrete:
            return spaces.MultiDiscrete([p.cardinality for p in self.params.values()])  # type: ignore[attr-defined]
        return spaces.Box(0.0, 1.0, shape=(len(self.params),), dtype=np.float32)

    def from_gymnasium(self, action: Any) -> Design:
        """Turn a one-shot action into a design (conditions applied; constraints checked by the Evaluator)."""
        return self.decode(np.asarray(action), kind="index" if self.discrete else "unit")

    def to_optuna(self) -> dict[str, Any]:
        """Optuna distributions per parameter (ordinals as integer indices so that TPE/GP keep their order)."""
        import optuna.distributions as od

        out: dict[str, Any] = {}
        for n, p in self.params.items():
            if isinstance(p, Categorical):
                out[n] = od.CategoricalDistribution(p.choices)
            elif isinstance(p, Ordinal):
                out[n] = od.IntDistribution(0, p.cardinality - 1)
            elif isinstance(p, Integer):
                out[n] = od.IntDistribution(p.low, p.high)
            elif isinstance(p, Float):
                out[n] = od.FloatDistribution(p.low, p.high, log=p.log)
        return out

    def suggest_optuna(self, trial: Any) -> Design:
        """Define-by-run sampling through an Optuna trial, so conditional parameters are asked only when active."""
        dists = self.to_optuna()
        out: Design = {}
        for n, p in self.params.items():
            if not p.active(out):
                continue
            raw = trial._suggest(n, dists[n])
            out[n] = p.value_at(int(raw)) if isinstance(p, Ordinal) else _plain(raw)  # type: ignore[attr-defined]
        return out

    def to_optuna_params(self, design: Design) -> dict[str, Any]:
        """A design as Optuna parameter values (ordinal values become their index)."""
        return {n: (self.params[n].index(v) if isinstance(self.params[n], Ordinal) else v) for n, v in design.items()}  # type: ignore[attr-defined]

    def to_ray_tune(self) -> dict[str, Any]:
        """A Ray Tune ``param_space`` (flat; conditional parameters present always, dropped by ``project``)."""
        from ray import tune

        out: dict[str, Any] = {}
        for n, p in self.params.items():
            if isinstance(p, (Categorical, Ordinal)):
                out[n] = tune.choice(list(p.values))
            elif isinstance(p, Integer):
                out[n] = tune.randint(p.low, p.high + 1)
            elif isinstance(p, Float):
                out[n] = tune.loguniform(p.low, p.high) if p.log else tune.uniform(p.low, p.high)
        return out

    def to_nni(self) -> dict[str, Any]:
        """An NNI search-space dict (flat; conditional parameters present always, dropped by ``project``)."""
        out: dict[str, Any] = {}
        for n, p in self.params.items():
            if isinstance(p, (Categorical, Ordinal)):
                out[n] = {"_type": "choice", "_value": list(p.values)}
            elif isinstance(p, Integer):
                out[n] = {"_type": "randint", "_value": [p.low, p.high + 1]}
            elif isinstance(p, Float):
                out[n] = {"_type": "loguniform" if p.log else "uniform", "_value": [p.low, p.high]}
        return out

    # -- constructive (one decision per step) ---------------------------------------------------------------------

    def allowed_values(self, name: str, partial: Design) -> list[Any]:
        """Values of ``name`` that the constraints still allow after the decisions in ``partial``."""
        p = self.params[name]
        values = list(p.values)  # type: ignore[attr-defined]
        for c in self.constraints:
            if name in c.params:
                values = c.allowed(name, partial, values)
        return values
