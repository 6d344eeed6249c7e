"""The proxy as a Simulator: ``ProxySimulator`` serves one or more trained proxy artefacts (one metric each) through
the Simulator protocol, batched, so any searcher runs on it; ``apply_simulator_override`` swaps it into a Problem
(``archgym search --simulator proxy:PATH``) and refuses a proxy trained on another design space."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from archgym.errors import ConfigError
from archgym.registry import Problem
from archgym.simulator import Metric, Simulator
from archgym.space import Design, DesignSpace

PREFIX = "proxy:"


class ProxySimulator(Simulator):
    """Predicts each artefact's metric (and reports its ensemble spread as the report-only ``<metric>_std``).

    ``metric_info`` gives the declared Metric of each proxied metric (direction, unit, scale), normally copied from
    the simulator the proxy stands in for; without it the artefact's record is used.
    """

    deterministic = True
    isolation = "inline"

    def __init__(self, paths: Sequence[str | Path], space: DesignSpace | None = None,
                 metric_info: dict[str, Metric] | None = None) -> None:
        from archgym.proxies.proxy import Proxy

        if not paths:
            raise ConfigError("a proxy simulator needs at least one artefact path")
        self.paths = [str(Path(p).resolve()) for p in paths]
        self.proxies = []
        for p in self.paths:
            proxy = Proxy.load(p, space)
            space = proxy.space
            self.proxies.append(proxy)
        names = [p.metric for p in self.proxies]
        if len(set(names)) != len(names):
            raise ConfigError(f"two proxy artefacts predict the same metric: {', '.join(names)}")
        assert space is not None
        self.space = space
        self.name = PREFIX + ",".join(self.paths)
        self._metric_info = dict(metric_info or {})
        metrics: list[Metric] = []
        for proxy in self.proxies:
            m = self._metric_info.get(proxy.metric) or Metric(**{k: v for k, v in (proxy.meta.get("metric_info") or {
                "name": proxy.metric}).items() if k in ("name", "unit", "direction", "scale")})
            metrics.append(replace(m, report_only=False) if m.report_only else m)
            metrics.append(Metric(f"{proxy.metric}_std", m.unit, "min", m.scale, report_only=True))
        self.metrics = tuple(metrics)

    def evaluate(self, design: Design, fidelity: float | None = None, workdir: Path | None = None) -> dict[str, float]:
        return self.evaluate_many([design], fidelity)[0]

    def evaluate_many(self, designs: Sequence[Design], fidelity: float | None = None,
                      workdir: Path | None = None) -> list[dict[str, float]]:
        """One batched prediction per artefact for all ``designs``."""
        out: list[dict[str, float]] = [{} for _ in designs]
        for proxy in self.proxies:
            mean, std = proxy.predict_dist(list(designs))
            for row, m, s in zip(out, mean, std):
                row[proxy.metric] = float(m)
                row[f"{proxy.metric}_std"] = float(s)
        return out

    def cost_hint(self) -> float:
        return 1e-5

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "proxies": self.paths}

    def __getstate__(self) -> dict[str, Any]:
        return {"paths": self.paths, "space": self.space, "metric_info": self._metric_info}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["paths"], state["space"], state["metric_info"])  # type: ignore[misc]


def parse_override(spec: str) -> list[str]:
    """The artefact paths of a ``proxy:PATH[,PATH...]`` spec."""
    if not spec.startswith(PREFIX):
        raise ConfigError(f"--simulator {spec!r} is not allowed; allowed: proxy:PATH[,PATH...] (trained proxy artefacts)")
    paths = [p for p in spec[len(PREFIX):].split(",") if p]
    if not paths:
        raise ConfigError("--simulator proxy: needs a path, e.g. proxy:runs/cora-rf")
    return paths


def apply_simulator_override(problem: Problem, spec: str) -> Problem:
    """``problem`` with its simulator replaced as ``spec`` says (``proxy:PATH[,PATH...]``): same space and objective.

    Refuses (ConfigError) a proxy trained on another design space, and an objective that needs a metric no proxy
    predicts.
    """
    real = problem.simulator
    info = {m.name: m for m in real.metrics}
    sim = ProxySimulator(parse_override(spec), problem.space, info)
    missing = [n for n in problem.objective.metric_names() if n not in {m.name for m in sim.metrics}]
    if missing:
        raise ConfigError(f"the objective of {problem.name} needs metric(s) {', '.join(missing)}, which the proxy "
                          f"artefacts do not predict (they predict: {', '.join(p.metric for p in sim.proxies)})")
    return Problem(f"{problem.name} [proxy]", sim, problem.objective, problem.max_steps,
                   {**problem.info, "real_simulator": real.name})


def resume_override(runner: Any, run: dict[str, Any], requested: str | None = None) -> Any:
    """For ``--resume``: rebuild ``runner`` on the proxy simulator its run was logged with (the run's ``simulator``
    field holds the ``proxy:`` spec); a different ``--simulator`` given at resume time is refused."""
    logged = str(run.get("simulator") or "")
    is_proxy = logged.startswith(PREFIX)
    if requested is not None:
        want = PREFIX + ",".join(str(Path(p).resolve()) for p in parse_override(requested))
        if want != logged:
            raise ConfigError(f"run {run['run_id']} was logged with simulator {logged!r}; --resume cannot switch it "
                              f"to {requested!r}")
    if not is_proxy:
        return runner
    from archgym.runner import LocalRunner

    problem = apply_simulator_override(runner.problem, logged)
    timeout = runner.evaluator.timeout
    runner.evaluator.close()
    return LocalRunner(problem, runner.searcher, runner.log, runner.run_id, runner.budget, runner.time_budget,
                       runner.batch_size, timeout)
