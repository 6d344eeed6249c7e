"""ArchGymEnv: a design problem as a Gymnasium environment, in one of two modes.

* ``oneshot`` (ArchGym's episodes): an action is a whole design; the observation is the normalised metrics of the last
  design; an episode ends when the objective's target is met (terminated) or after ``max_steps`` (truncated).
* ``constructive`` (AGNN/ENAS style): one decision per step, ``info["action_mask"]`` marks the allowed values of the
  current decision; the reward arrives when the design is complete, which ends the episode.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from archgym.errors import ConfigError
from archgym.evaluator import Evaluator, TrialResult
from archgym.log import TrialLog
from archgym.registry import Problem, make_problem
from archgym.space import Float

MODES = ("oneshot", "constructive")


class ArchGymEnv(gymnasium.Env):
    """Gymnasium wrapper of a Problem; every evaluation goes through one Evaluator (and its trial log, if any)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        problem: Problem,
        mode: str = "oneshot",
        max_steps: int | None = None,
        log: str | Path | TrialLog | None = None,
        run_id: str | None = None,
        float_bins: int = 8,
        timeout: float | None = None,
        env_id: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise ConfigError(f"mode {mode!r} is not allowed; allowed: {', '.join(MODES)}")
        self.problem = problem
        self.space = problem.space
        self.mode = mode
        self.max_steps = int(max_steps if max_steps is not None else problem.max_steps)
        self._own_log = log is not None and not isinstance(log, TrialLog)
        self.log = TrialLog(log) if self._own_log else log  # type: ignore[arg-type]
        if self.log is not None and run_id is None:
            run_id = self.log.start_run(env=env_id or problem.name, simulator=problem.simulator.name,
                                        searcher=f"gymnasium:{mode}", space=self.space.to_dict(),
                                        fingerprint=self.space.fingerprint(), objective=problem.objective.describe())
        self.evaluator = Evaluator(problem.simulator, problem.objective, log=self.log, run_id=run_id, timeout=timeout)
        self._metrics = [m for m in problem.simulator.metrics]
        self.observation_space: spaces.Space
        if mode == "oneshot":
            self.action_space = self.space.to_gymnasium()
            self.observation_space = spaces.Box(-np.inf, np.inf, shape=(len(self._metrics),), dtype=np.float32)
        else:
            self._choices = {n: self._decision_values(p, float_bins) for n, p in self.space.params.items()}
            width = max(len(v) for v in self._choices.values())
            self._offsets = np.cumsum([0] + [len(v) for v in self._choices.values()])
            self.action_space = spaces.Discrete(width)
            self.observation_space = spaces.Box(0.0, 1.0, shape=(int(self._offsets[-1]) + len(self._choices) + 1,),
                                                dtype=np.float32)
        self._steps = 0
        self._partial: dict[str, Any] = {}
        self._current: str | None = None

    @staticmethod
    def _decision_values(param: Any, bins: int) -> list[Any]:
        if isinstance(param, Float):
            return [param.from_unit((i + 0.5) / bins) for i in range(bins)]
        return list(param.values)

    # -- observations ----------------------------------------------------------------------------------------

    def _metric_obs(self, result: TrialResult | None) -> np.ndarray:
        if result is None or result.metrics is None:
            return np.zeros(len(self._metrics), dtype=np.float32)
        return np.array([np.clip(result.metrics[m.name] / m.scale, -1e6, 1e6) for m in self._metrics], dtype=np.float32)

    def _next_param(self) -> str | None:
        for name, p in self.space.params.items():
            if name not in self._partial and p.active(self._partial):
                return name
        return None

    def _allowed(self, name: str) -> list[Any]:
        p = self.space.params[name]
        values = self._choices[name]
        if isinstance(p, Float):
            return values
        return self.space.allowed_values(name, self._partial) or values

    def _constructive_obs(self) -> np.ndarray:
        obs = np.zeros(self.observation_space.shape, dtype=np.float32)
        names = list(self._choices)
        for i, name in enumerate(names):
            if name in self._partial:
                obs[self._offsets[i] + self._choices[name].index(self._partial[name])] = 1.0
        cur = self._current
        pos = names.index(cur) if cur is not None else len(names)
        obs[int(self._offsets[-1]) + pos] = 1.0
        return obs

    def _mask(self) -> np.ndarray:
        mask = np.zeros(self.action_space.n, dtype=np.int8)  # type: ignore[attr-defined]
        if self._current is not None:
            allowed = self._allowed(self._current)
            for v in allowed:
                mask[self._choices[self._current].index(v)] = 1
        return mask

    # -- Gymnasium API ---------------------------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._steps = 0
        if self.mode == "oneshot":
            return self._metric_obs(None), {}
        self._partial = {}
        self._current = self._next_param()
        return self._constructive_obs(), {"action_mask": self._mask()}

    def step(self, action: Any):
        if self.mode == "oneshot":
            return self._step_oneshot(action)
        return self._step_constructive(action)

    def _info(self, result: TrialResult) -> dict[str, Any]:
        return {"design": result.design, "metrics": result.metrics, "status": result.status, "error": result.error,
                "trial_id": result.trial_id, "satisfied": result.satisfied}

    def _step_oneshot(self, action: Any):
        self._steps += 1
        result = self.evaluator.evaluate(self.space.from_gymnasium(action))
        truncated = self._steps >= self.max_steps and not result.satisfied
        return self._metric_obs(result), float(result.reward), bool(result.satisfied), truncated, self._info(result)

    def _step_constructive(self, action: Any):
        self._steps += 1
        name = self._current
        if name is None:
            raise RuntimeError("step() called after the design was complete; call reset()")
        allowed = self._allowed(name)
        values = self._choices[name]
        chosen = values[int(action)] if int(action) < len(values) and values[int(action)] in allowed else \
            allowed[int(action) % len(allowed)]
        self._partial[name] = chosen
        self._current = self._next_param()
        if self._current is not None:
            return self._constructive_obs(), 0.0, False, False, {"action_mask": self._mask()}
        result = self.evaluator.evaluate(dict(self._partial))
        info = {**self._info(result), "action_mask": self._mask()}
        return self._constructive_obs(), float(result.reward), True, False, info

    def close(self) -> None:
        self.evaluator.close()
        if self._own_log and self.log is not None:
            self.log.close()
        super().close()


def make_env(env_id: str, mode: str = "oneshot", max_steps: int | None = None, log: str | Path | None = None,
             timeout: float | None = None, **kwargs: Any) -> ArchGymEnv:
    """Entry point used by ``gymnasium.make``: env-specific arguments go to the problem's factory."""
    return ArchGymEnv(make_problem(env_id, **kwargs), mode=mode, max_steps=max_steps, log=log, timeout=timeout,
                      env_id=env_id)
