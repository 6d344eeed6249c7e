"""PPO (stable-baselines3) as an ask/tell searcher over the Gymnasium env's action spaces, in either env mode.

How it works: the searcher builds SB3's ``PPO`` on a stand-in env that has exactly the observation and action spaces
that ``ArchGymEnv`` has for this design space, and then drives SB3's policy and rollout buffer itself instead of
calling ``learn``, because in archgym the runner (not the agent) owns evaluation:

* ``mode="oneshot"``: one action is a whole design (MultiDiscrete indices, or a unit Box for spaces with floats), as
  in the env's one-shot mode. The observation is constant, so the policy is a learned distribution over designs
  (a contextual-free bandit); each design is a one-step episode.
* ``mode="constructive"``: one decision per step, the observation is the one-hot of the decisions made so far plus
  the position, and actions outside the allowed values are mapped into them exactly as the env does.

``ask(n)`` samples n designs from the current policy and keeps their transitions (observation, action, value,
log-probability); ``tell`` adds them to SB3's rollout buffer with the (running-normalised) reward on the last step,
and every ``n_steps`` transitions SB3's ``PPO.train`` runs its clipped-surrogate update. Seeded: action sampling and
minibatch shuffling run under torch/numpy seeds drawn from ``self.rng``. Batchable: a batch is sampled from one
policy. Resumable: ``state_dict`` holds the policy and optimizer weights, the rollout buffer and the pending
transitions (base64 of torch's serialisation inside JSON).

``train_on_env`` is the other direction: plain SB3 ``PPO.learn`` on a registered env id, the env evaluating (and
logging) every design itself.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from archgym.errors import ConfigError
from archgym.searcher import Searcher
from archgym.space import Design, DesignSpace, Float

MODES = ("oneshot", "constructive")
_DEDUPE_TRIES = 3


def _b64(obj: Any) -> str:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return base64.b64encode(buf.getvalue()).decode()


def _unb64(text: str) -> Any:
    import torch

    return torch.load(io.BytesIO(base64.b64decode(text)), weights_only=False)


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Run torch sampling and SB3's numpy minibatch shuffling from ``seed``, leaving the global states as they were."""
    import torch

    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)


class _Decisions:
    """The constructive mode's decisions, observations and action mapping (the same as ArchGymEnv's)."""

    def __init__(self, space: DesignSpace, float_bins: int) -> None:
        self.space = space
        self.choices = {n: ([p.from_unit((i + 0.5) / float_bins) for i in range(float_bins)] if isinstance(p, Float)
                            else list(p.values)) for n, p in space.params.items()}  # type: ignore[attr-defined]
        self.offsets = np.cumsum([0] + [len(v) for v in self.choices.values()])
        self.width = max(len(v) for v in self.choices.values())
        self.obs_size = int(self.offsets[-1]) + len(self.choices) + 1

    def next_param(self, partial: Design) -> str | None:
        for name, p in self.space.params.items():
            if name not in partial and p.active(partial):
                return name
        return None

    def obs(self, partial: Design, current: str | None) -> np.ndarray:
        o = np.zeros(self.obs_size, dtype=np.float32)
        names = list(self.choices)
        for i, name in enumerate(names):
            if name in partial:
                o[self.offsets[i] + self.choices[name].index(partial[name])] = 1.0
        o[int(self.offsets[-1]) + (names.index(current) if current is not None else len(names))] = 1.0
        return o

    def apply(self, name: str, action: int, partial: Design) -> Any:
        values = self.choices[name]
        p = self.space.params[name]
        allowed = values if isinstance(p, Float) else (self.space.allowed_values(name, partial) or values)
        return values[action] if action < len(values) and values[action] in allowed else allowed[action % len(allowed)]


def _stand_in_env(observation_space: Any, action_space: Any) -> Any:
    """A Gymnasium env with the given spaces, for SB3's constructor; the searcher never steps it."""
    import gymnasium

    class _SpacesOnly(gymnasium.Env):
        def __init__(self) -> None:
            self.observation_space, self.action_space = observation_space, action_space

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            super().reset(seed=seed)
            return np.zeros(observation_space.shape, dtype=np.float32), {}

        def step(self, action: Any):
            raise RuntimeError("the PPO searcher drives SB3's policy itself; this env is never stepped")

    return _SpacesOnly()


class PPOSearcher(Searcher):
    """Proximal policy optimisation (stable-baselines3) over whole designs or decision by decision."""

    name = "ppo"
    hyperparameter_doc = {
        "mode": "'oneshot' (an action is a whole design) or 'constructive' (one decision per step)",
        "n_steps": "transitions collected between PPO updates (SB3 n_steps)",
        "batch_size": "minibatch size of the PPO update",
        "n_epochs": "passes over the collected transitions per update",
        "learning_rate": "Adam learning rate",
        "ent_coef": "entropy bonus (keeps the policy exploring)",
        "clip_range": "PPO's clipping of the probability ratio",
        "gamma": "discount (1.0: the design's reward counts fully for every decision)",
        "gae_lambda": "GAE lambda",
        "hidden": "units in each of the two hidden layers of the policy and value networks",
        "float_bins": "values per float parameter in constructive mode (as in the env)",
        "normalize_reward": "standardise rewards with running mean and std before PPO sees them",
        "device": "torch device: 'auto' (CUDA when available), 'cpu' or 'cuda'",
        "dedupe": f"when the policy samples an evaluated design, feed its known reward to PPO and sample again "
                  f"(up to {_DEDUPE_TRIES} times, then propose an unseen uniform draw, scored under the policy)",
    }

    def __init__(self, space: DesignSpace, seed: int = 0, mode: str = "oneshot", n_steps: int = 10,
                 batch_size: int = 10, n_epochs: int = 10, learning_rate: float = 3e-3, ent_coef: float = 0.01,
                 clip_range: float = 0.2, gamma: float = 1.0, gae_lambda: float = 1.0, hidden: int = 64,
                 float_bins: int = 8, normalize_reward: bool = True, device: str = "auto",
                 dedupe: bool = True) -> None:
        super().__init__(space, seed)
        if mode not in MODES:
            raise ConfigError(f"ppo: mode={mode!r} is not allowed; allowed: {', '.join(MODES)}")
        if n_steps < 2 or batch_size < 2:
            raise ConfigError(f"ppo: n_steps and batch_size must be >= 2, got {n_steps}, {batch_size}")
        if device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"ppo: device={device!r} is not allowed; allowed: auto, cpu, cuda")
        self.mode, self.n_steps, self.batch_size, self.n_epochs = mode, int(n_steps), int(batch_size), int(n_epochs)
        self.learning_rate, self.ent_coef, self.clip_range = float(learning_rate), float(ent_coef), float(clip_range)
        self.gamma, self.gae_lambda, self.hidden, self.float_bins = float(gamma), float(gae_lambda), int(hidden), int(float_bins)
        self.normalize_reward, self.device, self.dedupe = normalize_reward, device, dedupe
        self.known: dict[str, float] = {}  # canonical key -> reward of told designs
        self._decisions = _Decisions(space, self.float_bins) if mode == "constructive" else None
        self.model = self._build()
        self.pending: dict[str, list[list[Any]]] = {}  # design JSON -> [trajectory], a trajectory = [[obs, act, v, lp]]
        self.reward_stats = [0, 0.0, 0.0]  # count, mean, M2 (Welford)

    def _build(self) -> Any:
        import torch
        from gymnasium import spaces
        from stable_baselines3 import PPO
        from stable_baselines3.common.logger import configure

        if self.mode == "oneshot":
            obs_space, act_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32), self.space.to_gymnasium()
        else:
            d = self._decisions
            obs_space = spaces.Box(0.0, 1.0, shape=(d.obs_size,), dtype=np.float32)  # type: ignore[union-attr]
            act_space = spaces.Discrete(d.width)  # type: ignore[union-attr]
        device = ("cuda" if torch.cuda.is_available() else "cpu") if self.device == "auto" else self.device
        with _seeded(self.seed):
            model = PPO("MlpPolicy", _stand_in_env(obs_space, act_space), n_steps=self.n_steps,
                        batch_size=self.batch_size, n_epochs=self.n_epochs, learning_rate=self.learning_rate,
                        ent_coef=self.ent_coef, clip_range=self.clip_range, gamma=self.gamma,
                        gae_lambda=self.gae_lambda, policy_kwargs={"net_arch": [self.hidden, self.hidden]},
                        seed=self.seed, device=device, verbose=0)
        model.set_logger(configure(None, []))
        return model

    # -- acting ------------------------------------------------------------------------------------------------

    def _act(self, obs: np.ndarray) -> tuple[np.ndarray, float, float]:
        import torch

        with torch.no_grad():
            t = torch.as_tensor(obs[None], device=self.model.device)
            action, value, log_prob = self.model.policy(t)
        return action.cpu().numpy()[0], float(value.item()), float(log_prob.item())

    def _sample(self) -> tuple[Design, list[list[Any]]]:
        if self.mode == "oneshot":
            obs = np.zeros(1, dtype=np.float32)
            action, value, lp = self._act(obs)
            act = np.clip(action, 0.0, 1.0) if not self.space.discrete else action
            return self.space.from_gymnasium(act), [[obs.tolist(), np.asarray(action).tolist(), value, lp]]
        d = self._decisions
        partial: Design = {}
        steps = []
        current = d.next_param(partial)  # type: ignore[union-attr]
        while current is not None:
            obs = d.obs(partial, current)  # type: ignore[union-attr]
            action, value, lp = self._act(obs)
            steps.append([obs.tolist(), [int(action)], value, lp])
            partial[current] = d.apply(current, int(action), partial)  # type: ignore[union-attr]
            current = d.next_param(partial)  # type: ignore[union-attr]
        return partial, steps

    def _evaluate(self, obs: np.ndarray, action: np.ndarray) -> tuple[float, float]:
        """Value of ``obs`` and log-probability of ``action`` under the current policy."""
        import torch
        from gymnasium import spaces

        dev = self.model.device
        act = torch.as_tensor(np.asarray(action)[None], device=dev)
        if isinstance(self.model.action_space, spaces.Discrete):
            act = act.long().flatten()
        with torch.no_grad():
            value, log_prob, _ = self.model.policy.evaluate_actions(torch.as_tensor(obs[None], device=dev), act)
        return float(value.item()), float(log_prob.item())

    def _steps_for(self, design: Design) -> tuple[Design, list[list[Any]]]:
        """The transitions that would have produced ``design`` (floats snapped to the action grid)."""
        if self.mode == "oneshot":
            obs = np.zeros(1, dtype=np.float32)
            action = self.space.encode(design, "index" if self.space.discrete else "unit")
            action = np.where(action < 0, 0, action).astype(np.int64 if self.space.discrete else np.float32)
            return self.space.from_gymnasium(action), [[obs.tolist(), action.tolist(), *self._evaluate(obs, action)]]
        d = self._decisions
        partial: Design = {}
        steps = []
        current = d.next_param(partial)  # type: ignore[union-attr]
        while current is not None:
            obs = d.obs(partial, current)  # type: ignore[union-attr]
            values, v = d.choices[current], design[current]  # type: ignore[union-attr]
            a = values.index(v) if v in values else int(np.argmin([abs(x - v) for x in values]))
            steps.append([obs.tolist(), [a], *self._evaluate(obs, np.array([a]))])
            partial[current] = d.apply(current, a, partial)  # type: ignore[union-attr]
            current = d.next_param(partial)  # type: ignore[union-attr]
        return partial, steps

    def _known(self, design: Design) -> str | None:
        if self.space.is_valid(design):
            key = self.space.key(design)
            return key if key in self.known else None
        return None

    def _unseen(self) -> Design:
        d = self.space.sample(self.rng)
        for _ in range(100):
            if self._known(d) is None:
                break
            d = self.space.sample(self.rng)
        return d

    def ask(self, n: int = 1) -> list[Design]:
        out = []
        with _seeded(int(self.rng.integers(2**31 - 1))):
            for _ in range(n):
                design, steps = self._sample()
                for attempt in range(_DEDUPE_TRIES + 1 if self.dedupe else 0):
                    key = self._known(design)
                    if key is None:
                        break
                    self._add(steps, self._normalised(self.known[key]))  # a repeat: PPO learns its known reward
                    design, steps = self._sample() if attempt < _DEDUPE_TRIES else self._steps_for(self._unseen())
                self.pending.setdefault(json.dumps(design, sort_keys=True), []).append(steps)
                out.append(design)
        return out

    # -- learning ----------------------------------------------------------------------------------------------

    def _normalised(self, reward: float) -> float:
        n, mean, m2 = self.reward_stats
        n += 1
        delta = reward - mean
        mean += delta / n
        m2 += delta * (reward - mean)
        self.reward_stats = [n, mean, m2]
        if not self.normalize_reward:
            return reward
        std = (m2 / (n - 1)) ** 0.5 if n > 1 else 1.0
        return (reward - mean) / (std if std > 1e-8 else 1.0)

    def _add(self, steps: list[list[Any]], reward: float) -> None:
        import torch

        buf = self.model.rollout_buffer
        for i, (obs, action, value, lp) in enumerate(steps):
            last = i == len(steps) - 1
            buf.add(np.asarray([obs], dtype=np.float32), np.asarray([action]), np.array([reward if last else 0.0]),
                    np.array([i == 0]), torch.tensor([[value]]), torch.tensor([lp]))
            if buf.full:
                next_value = 0.0 if last else steps[i + 1][2]
                buf.compute_returns_and_advantage(torch.tensor([[next_value]]), np.array([last]))
                with _seeded(int(self.rng.integers(2**31 - 1))):
                    self.model.train()
                buf.reset()

    def tell(self, designs: Sequence[Design], results: Sequence[Any]) -> None:
        super().tell(designs, results)
        for design, result in zip(designs, results):
            k = json.dumps(design, sort_keys=True)
            if not self.pending.get(k):
                raise ConfigError(f"ppo: told a design that was not asked for: {design}")
            steps = self.pending[k].pop(0)
            if not self.pending[k]:
                del self.pending[k]
            self._add(steps, self._normalised(float(result.reward)))
            if result.key != "invalid":
                self.known[result.key] = float(result.reward)

    # -- state -------------------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        buf = self.model.rollout_buffer
        arrays = {k: getattr(buf, k) for k in ("observations", "actions", "rewards", "episode_starts", "values",
                                                "log_probs")}
        return {**super().state_dict(), "policy": _b64(self.model.policy.state_dict()),
                "optimizer": _b64(self.model.policy.optimizer.state_dict()), "buffer": _b64(arrays),
                "buffer_pos": int(buf.pos), "n_updates": int(self.model._n_updates), "pending": self.pending,
                "reward_stats": self.reward_stats, "known": self.known}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.model.policy.load_state_dict(_unb64(state["policy"]))
        self.model.policy.optimizer.load_state_dict(_unb64(state["optimizer"]))
        buf = self.model.rollout_buffer
        for k, v in _unb64(state["buffer"]).items():
            setattr(buf, k, v)
        buf.pos, buf.full = state["buffer_pos"], False
        self.model._n_updates = state["n_updates"]
        self.pending = {k: list(v) for k, v in state["pending"].items()}
        self.reward_stats = list(state["reward_stats"])
        self.known = dict(state["known"])


def train_on_env(env_id: str, mode: str = "oneshot", total_timesteps: int = 1000, seed: int = 0,
                 log: str | None = None, **env_kwargs: Any) -> Any:
    """Plain SB3: ``PPO.learn`` on the registered env ``env_id`` in ``mode``; the env evaluates every design (and logs
    it to ``log`` if given). Returns the trained model; the env's evaluations are in ``model.get_env()``."""
    from stable_baselines3 import PPO

    from archgym.env import make_env

    env = make_env(env_id, mode=mode, log=log, **env_kwargs)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, seed=seed, verbose=0, device="auto")
    model.learn(total_timesteps=total_timesteps)
    return model
