"""The Simulator protocol: what turns a design into metrics (a hardware simulator, a benchmark table, a training run,
or a proxy model). Any searcher runs on any Simulator."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from archgym.space import Design, DesignSpace

Metrics = dict[str, float]


@dataclass(frozen=True)
class Metric:
    """A metric a simulator reports. ``report_only`` metrics (e.g. test accuracy) are logged but never optimised."""

    name: str
    unit: str = ""
    direction: Literal["max", "min"] = "max"
    scale: float = 1.0
    report_only: bool = False

    @property
    def sign(self) -> float:
        """+1 if larger is better, -1 if smaller is better: ``sign * value`` is always 'higher is better'."""
        return 1.0 if self.direction == "max" else -1.0


class Simulator:
    """Base class of every simulator.

    Subclasses set ``space``, ``metrics`` and ``deterministic`` and implement ``evaluate``. ``isolation`` tells the
    Evaluator how to run it: ``"inline"`` (in-process; cheap, trusted code such as table look-ups) or ``"process"``
    (a child process per evaluation, so a crash or hang costs one trial, not the search). A simulator that writes
    files sets ``uses_workdir`` and receives a private scratch directory per evaluation.
    """

    name: str = "simulator"
    space: DesignSpace
    metrics: tuple[Metric, ...] = ()
    deterministic: bool = True
    isolation: Literal["inline", "process"] = "inline"
    uses_workdir: bool = False
    default_timeout: float | None = None

    def evaluate(self, design: Design, fidelity: float | None = None, workdir: Path | None = None) -> dict[str, float]:
        """Evaluate one validated design and return every declared metric."""
        raise NotImplementedError

    def evaluate_many(
        self, designs: Sequence[Design], fidelity: float | None = None, workdir: Path | None = None
    ) -> list[dict[str, float]]:
        """Evaluate several designs; simulators that batch (proxies, GPUs) override this."""
        return [self.evaluate(d, fidelity=fidelity, workdir=workdir) for d in designs]

    def metric(self, name: str) -> Metric:
        """The declared metric called ``name`` (error listing the declared ones otherwise)."""
        for m in self.metrics:
            if m.name == name:
                return m
        from archgym.errors import ConfigError

        raise ConfigError(f"metric {name!r} is not reported by {self.name}; metrics: {', '.join(m.name for m in self.metrics)}")

    def cost_hint(self) -> float | None:
        """Expected seconds per evaluation if known (the Ray runner sizes its batches from it)."""
        return None

    def describe(self) -> dict[str, Any]:
        """What the trial log records about this simulator."""
        return {"name": self.name, "deterministic": self.deterministic, "metrics": [m.__dict__ for m in self.metrics]}
