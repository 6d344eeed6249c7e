"""One-shot gradient searchers on the TangleNAS supernets: DARTS (first order), DrNAS, GDAS and SPOS.

The supernet is the searcher's state. Each design asked for costs one epoch of supernet training (bilevel: network
weights on one half of the training split, architecture weights on the other half), after which the searcher proposes
its current architecture (any-time readout): the argmax of the architecture weights (DARTS, DrNAS, GDAS) or the best
design found so far by evolution / random search over the trained supernet (SPOS). The runner evaluates that design
through the env like any other, so the trial log holds the readout after every epoch; the env retrains it standalone.
"""

from __future__ import annotations

import base64
import inspect
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from archgym.errors import ConfigError
from archgym.search_spaces import tangle_spaces as ts
from archgym.searcher import Searcher
from archgym.space import Design, DesignSpace

_COMMON_DOC = {
    "supernet": "'entangled' (TangleNAS: one shared weight per layer) or 'classic' (separate weights per candidate)",
    "batch_size": "mini-batch size of both the weight and the architecture steps",
    "steps_per_epoch": "training steps per proposed design; 0 = one pass over the weight half (images) or 100 (text)",
    "w_lr": "AdamW learning rate of the supernet weights",
    "w_weight_decay": "AdamW weight decay of the supernet weights",
    "arch_lr": "Adam learning rate of the architecture weights",
    "arch_weight_decay": "weight decay of the architecture weights",
    "warmup_epochs": "epochs that train only the supernet weights before architecture updates start",
    "device": "'auto' (GPU when present), 'cpu' or 'cuda[:i]'",
}


class OneShotSearcher(Searcher):
    """Base of the one-shot searchers: owns the supernet, its optimisers, the bilevel data split and the checkpoint.
    Subclasses say how architecture weights become the probabilities a forward pass uses."""

    name = "oneshot"
    updates_arch = True
    hyperparameter_doc = dict(_COMMON_DOC)

    def __init__(self, space: DesignSpace, seed: int = 0, supernet: str = "entangled", batch_size: int = 64,
                 steps_per_epoch: int = 0, w_lr: float = 2e-3, w_weight_decay: float = 1e-4, arch_lr: float = 3e-3,
                 arch_weight_decay: float = 1e-3, warmup_epochs: int = 1, device: str = "auto") -> None:
        super().__init__(space, seed)
        self.spec = ts.tangle_spec(space)
        if supernet not in ("entangled", "classic"):
            raise ConfigError(f"supernet {supernet!r} is not allowed; allowed: 'entangled', 'classic'")
        for name, v in (("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch), ("warmup_epochs", warmup_epochs)):
            if not isinstance(v, int) or v < (1 if name == "batch_size" else 0):
                raise ConfigError(f"{name} must be a {'positive' if name == 'batch_size' else 'non-negative'} integer, got {v!r}")
        for name, v in (("w_lr", w_lr), ("arch_lr", arch_lr)):
            if not v > 0:
                raise ConfigError(f"{name} must be positive, got {v!r}")
        from archgym.simulators.standalone_train import pick_device

        pick_device(device)
        self.supernet, self.batch_size, self.steps_per_epoch = supernet, batch_size, steps_per_epoch
        self.w_lr, self.w_weight_decay, self.arch_lr = w_lr, w_weight_decay, arch_lr
        self.arch_weight_decay, self.warmup_epochs, self.device = arch_weight_decay, warmup_epochs, device
        self.epoch = 0
        self.net: Any = None

    @classmethod
    def hyperparameters(cls) -> dict[str, Any]:
        """The common one-shot hyperparameters plus the method's own (subclasses pass the common ones on)."""
        out: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            if isinstance(klass, type) and issubclass(klass, OneShotSearcher) and "__init__" in vars(klass):
                for n, p in inspect.signature(klass.__init__).parameters.items():
                    if n not in ("self", "space", "seed") and p.kind is not p.VAR_KEYWORD:
                        out[n] = p.default
        return {n: v for n, v in out.items() if n not in cls.unused}

    unused: tuple[str, ...] = ()

    @classmethod
    def _base_kwargs(cls, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """The common hyperparameters a subclass received; unknown names are refused with the allowed list."""
        allowed = cls.hyperparameters()
        for k in kwargs:
            if k not in allowed:
                raise ConfigError(f"searcher {cls.name}: unknown argument {k!r}; allowed: {', '.join(allowed)}")
        return dict(kwargs)

    # -- construction ---------------------------------------------------------------------------------------------

    def _build(self) -> None:
        """Load the data, build the supernet, architecture weights and optimisers (lazily: on first use)."""
        import torch

        from archgym.simulators.standalone_train import pick_device, torch_seed
        from archgym.simulators.tangle_data import TextData, load_data

        self.dev = pick_device(self.device)
        self.data = load_data(self.spec["data"])
        self.task = ts.make_task(self.space, self.data)
        self.text = isinstance(self.data, TextData)
        self.choices = ts.choices(self.space)
        with torch_seed(self.seed, self.dev):
            self.net = ts.build_supernet(self.space, self.task, self.supernet == "entangled").to(self.dev)
        self.alpha = torch.nn.ParameterDict(
            {n.replace(".", "_"): torch.nn.Parameter(torch.zeros(len(v), device=self.dev)) for n, v in self.choices.items()})
        self.w_opt = torch.optim.AdamW(self.net.parameters(), lr=self.w_lr, weight_decay=self.w_weight_decay)
        self.a_opt = torch.optim.Adam(self.alpha.parameters(), lr=self.arch_lr, betas=(0.5, 0.999),
                                      weight_decay=self.arch_weight_decay)
        # the bilevel split depends on the seed only, so a resumed search sees the same halves
        if self.text:
            half = len(self.data.train) // 2
            self.w_ids, self.a_ids = self.data.train[:half], self.data.train[half:]
        else:
            perm = torch.as_tensor(np.random.default_rng(self.seed).permutation(len(self.data.x_train)))
            w, a = perm[: len(perm) // 2], perm[len(perm) // 2:]
            self.w_xy = (self.data.x_train[w].to(self.dev), self.data.y_train[w].to(self.dev))
            self.a_xy = (self.data.x_train[a].to(self.dev), self.data.y_train[a].to(self.dev))

    def _alpha(self, name: str):
        return self.alpha[name.replace(".", "_")]

    # -- batches ---------------------------------------------------------------------------------------------------

    def _n_steps(self) -> int:
        if self.steps_per_epoch:
            return self.steps_per_epoch
        if self.text:
            return 100
        return max(1, int(np.ceil(len(self.w_xy[0]) / self.batch_size)))

    def _batch(self, half: str, i: int, order: np.ndarray):
        """Batch ``i`` of an epoch from the weight half ('w') or the architecture half ('a')."""
        import torch

        from archgym.simulators.tangle_data import text_batch

        if self.text:
            ids = self.w_ids if half == "w" else self.a_ids
            x, y = text_batch(ids, self.rng.integers(0, len(ids) - self.task.block_size - 1, size=self.batch_size),
                              self.task.block_size)
            return x.to(self.dev), y.to(self.dev)
        x, y = self.w_xy if half == "w" else self.a_xy
        n = len(x)
        idx = order[(i * self.batch_size) % n:][: self.batch_size]
        if len(idx) < self.batch_size:
            idx = np.concatenate([idx, order[: self.batch_size - len(idx)]])
        t = torch.as_tensor(idx, device=self.dev)
        return x[t], y[t]

    # -- the method-specific parts ---------------------------------------------------------------------------------

    def arch_probs(self, for_weights: bool) -> dict[str, Any]:
        """The probabilities of one forward pass: for the weight step (no gradient to alpha) or the arch step."""
        raise NotImplementedError

    def arch_regulariser(self):
        return 0.0

    def after_epoch(self) -> None:
        """Hook run after each epoch of supernet training (SPOS searches here)."""

    # -- training --------------------------------------------------------------------------------------------------

    def _epoch(self) -> None:
        from archgym.simulators.standalone_train import loss_fn, torch_seed

        self.net.train()
        # images: a fresh shuffle of each half per epoch; text: random windows drawn per batch
        w_order = a_order = np.zeros(0, dtype=np.int64)
        if not self.text:
            w_order, a_order = self.rng.permutation(len(self.w_xy[0])), self.rng.permutation(len(self.a_xy[0]))
        with torch_seed(int(self.rng.integers(2**31)), self.dev):
            for i in range(self._n_steps()):
                if self.updates_arch and self.epoch >= self.warmup_epochs:
                    xa, ya = self._batch("a", i, a_order)
                    self.a_opt.zero_grad(set_to_none=True)
                    loss = loss_fn(self.net(xa, self.arch_probs(for_weights=False)), ya) + self.arch_regulariser()
                    loss.backward()
                    self.a_opt.step()
                xw, yw = self._batch("w", i, w_order)
                self.w_opt.zero_grad(set_to_none=True)
                loss_fn(self.net(xw, self.arch_probs(for_weights=True)), yw).backward()
                self.w_opt.step()
        self.epoch += 1
        self.after_epoch()

    def readout(self) -> Design:
        """The current architecture: the argmax of every parameter's architecture weights."""
        return ts.design_from_indices(self.space, {n: int(self._alpha(n).detach().argmax()) for n in self.choices})

    def ask(self, n: int = 1) -> list[Design]:
        """Train the supernet one epoch per design asked for and propose the readout after each epoch."""
        if self.net is None:
            self._build()
        out = []
        for _ in range(n):
            self._epoch()
            out.append(self.readout())
        return out

    def arch_distribution(self) -> dict[str, list[float]]:
        """The current architecture weights as probabilities per parameter (softmax of alpha)."""
        if self.net is None:
            self._build()
        return {n: [float(v) for v in self._alpha(n).detach().softmax(0).cpu()] for n in self.choices}

    # -- checkpoint ------------------------------------------------------------------------------------------------

    def _torch_state(self) -> dict[str, Any]:
        return {"net": self.net.state_dict(), "alpha": self.alpha.state_dict(), "w_opt": self.w_opt.state_dict(),
                "a_opt": self.a_opt.state_dict()}

    def state_dict(self) -> dict[str, Any]:
        """JSON-able: the numpy RNG, the epoch, and the supernet, architecture weights and optimisers as base64 of
        ``torch.save`` bytes."""
        import torch

        state = {**super().state_dict(), "epoch": self.epoch}
        if self.net is not None:
            buf = io.BytesIO()
            torch.save(self._torch_state(), buf)
            state["torch"] = base64.b64encode(buf.getvalue()).decode("ascii")
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        import torch

        super().load_state_dict(dict(state))
        self.epoch = int(state["epoch"])
        if "torch" in state:
            if self.net is None:
                self._build()
            blob = torch.load(io.BytesIO(base64.b64decode(state["torch"])), map_location=self.dev, weights_only=True)
            self.net.load_state_dict(blob["net"])
            self.alpha.load_state_dict(blob["alpha"])
            self.w_opt.load_state_dict(blob["w_opt"])
            self.a_opt.load_state_dict(blob["a_opt"])


class DARTS(OneShotSearcher):
    """DARTS, first order: forward passes use softmax(alpha); alpha descends the validation loss."""

    name = "darts"

    def arch_probs(self, for_weights: bool) -> dict[str, Any]:
        out = {}
        for n in self.choices:
            a = self._alpha(n)
            out[n] = (a.detach() if for_weights else a).softmax(0)
        return out


class DrNAS(OneShotSearcher):
    """DrNAS: architecture weights are samples of Dirichlet(elu(alpha) + 1) (reparameterised, so the validation loss
    trains the concentrations), with an L2 penalty on the concentrations."""

    name = "drnas"
    hyperparameter_doc = {**_COMMON_DOC, "reg_weight": "L2 penalty on the Dirichlet concentrations"}

    def __init__(self, space: DesignSpace, seed: int = 0, reg_weight: float = 1e-3, **kwargs: Any) -> None:
        super().__init__(space, seed, **self._base_kwargs(kwargs))
        if reg_weight < 0:
            raise ConfigError(f"reg_weight must be >= 0, got {reg_weight!r}")
        self.reg_weight = reg_weight

    def _concentration(self, name: str):
        import torch.nn.functional as F

        return F.elu(self._alpha(name)) + 1.0

    def arch_probs(self, for_weights: bool) -> dict[str, Any]:
        from torch.distributions import Dirichlet

        out = {}
        for n in self.choices:
            conc = self._concentration(n)
            out[n] = Dirichlet(conc.detach() if for_weights else conc).rsample()
        return out

    def arch_distribution(self) -> dict[str, list[float]]:
        """The mean of each parameter's Dirichlet: concentration / its sum."""
        if self.net is None:
            self._build()
        out = {}
        for n in self.choices:
            conc = self._concentration(n).detach()
            out[n] = [float(v) for v in (conc / conc.sum()).cpu()]
        return out

    def arch_regulariser(self):
        return self.reg_weight * sum((self._concentration(n) ** 2).sum() for n in self.choices)


class GDAS(OneShotSearcher):
    """GDAS: one hard Gumbel-softmax sample per parameter and step (straight-through gradient), temperature annealed
    linearly from ``tau_max`` to ``tau_min`` over ``anneal_epochs``."""

    name = "gdas"
    hyperparameter_doc = {**_COMMON_DOC, "tau_max": "initial Gumbel-softmax temperature",
                          "tau_min": "final temperature", "anneal_epochs": "epochs over which the temperature anneals"}

    def __init__(self, space: DesignSpace, seed: int = 0, tau_max: float = 10.0, tau_min: float = 0.1,
                 anneal_epochs: int = 20, **kwargs: Any) -> None:
        super().__init__(space, seed, **self._base_kwargs(kwargs))
        if not 0 < tau_min <= tau_max:
            raise ConfigError(f"need 0 < tau_min <= tau_max, got tau_min={tau_min!r}, tau_max={tau_max!r}")
        if not isinstance(anneal_epochs, int) or anneal_epochs < 1:
            raise ConfigError(f"anneal_epochs must be a positive integer, got {anneal_epochs!r}")
        self.tau_max, self.tau_min, self.anneal_epochs = tau_max, tau_min, anneal_epochs

    def tau(self) -> float:
        frac = min(1.0, self.epoch / max(1, self.anneal_epochs - 1))
        return self.tau_max - (self.tau_max - self.tau_min) * frac

    def arch_probs(self, for_weights: bool) -> dict[str, Any]:
        import torch

        out = {}
        for n in self.choices:
            a = self._alpha(n).detach() if for_weights else self._alpha(n)
            gumbel = -torch.empty_like(a).exponential_().clamp_min(1e-20).log()
            soft = ((a.log_softmax(0) + gumbel) / self.tau()).softmax(0)
            hard = torch.zeros_like(soft).scatter_(0, soft.argmax().view(1), 1.0)
            out[n] = hard - soft.detach() + soft
        return out


class SPOS(OneShotSearcher):
    """SPOS: train the supernet on one uniformly sampled path per step, then after every epoch search the trained
    supernet (evolution: mutation and crossover of the best; or random sampling) scoring designs by their supernet
    accuracy (images) or negative loss (text) on fixed batches of the architecture half."""

    name = "spos"
    updates_arch = False
    unused = ("arch_lr", "arch_weight_decay", "warmup_epochs")
    hyperparameter_doc = {**{k: v for k, v in _COMMON_DOC.items() if not k.startswith("arch")},
                          "search": "'evolution' or 'random' search over the trained supernet",
                          "population": "designs kept (and new candidates per generation)",
                          "generations": "search generations after each epoch",
                          "eval_batches": "batches of the architecture half that score a design"}

    def __init__(self, space: DesignSpace, seed: int = 0, search: str = "evolution", population: int = 10,
                 generations: int = 1, eval_batches: int = 2, **kwargs: Any) -> None:
        super().__init__(space, seed, **self._base_kwargs(kwargs))
        if search not in ("evolution", "random"):
            raise ConfigError(f"search {search!r} is not allowed; allowed: 'evolution', 'random'")
        for name, v in (("population", population), ("generations", generations), ("eval_batches", eval_batches)):
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        self.search, self.population, self.generations, self.eval_batches = search, population, generations, eval_batches
        self.pop: list[Design] = []
        self.fitness: list[float] = []

    def arch_probs(self, for_weights: bool) -> dict[str, Any]:
        import torch

        design = self.space.sample(self.rng)
        out = {}
        for n, vals in self.choices.items():
            i = self.space.params[n].index(design[n]) if n in design else int(self.rng.integers(len(vals)))  # type: ignore[attr-defined]
            v = torch.zeros(len(vals), device=self.dev)
            v[i] = 1.0
            out[n] = v
        return out

    def arch_distribution(self) -> dict[str, list[float]]:
        """SPOS keeps no architecture weights: the frequency of each value in the current population."""
        out = {}
        for n, vals in self.choices.items():
            counts = np.array([sum(1 for d in self.pop if d.get(n) == v) for v in vals], dtype=float)
            out[n] = list(counts / counts.sum()) if counts.sum() else [1.0 / len(vals)] * len(vals)
        return out

    def score(self, designs: list[Design]) -> list[float]:
        """Supernet fitness of each design on the fixed scoring batches (higher is better)."""
        import torch

        from archgym.simulators.standalone_train import loss_fn
        from archgym.simulators.tangle_data import eval_starts, text_batch

        self.net.eval()
        if self.text:
            starts = eval_starts(len(self.a_ids), self.task.block_size, self.eval_batches * self.batch_size)
            x, y = text_batch(self.a_ids, starts, self.task.block_size)
        else:
            x, y = self.a_xy[0][: self.eval_batches * self.batch_size], self.a_xy[1][: self.eval_batches * self.batch_size]
        x, y = x.to(self.dev), y.to(self.dev)
        out = []
        with torch.no_grad():
            for d in designs:
                probs = ts.onehot_probs(self.space, d, device=self.dev)
                total = 0.0
                for i in range(0, len(x), self.batch_size):
                    logits = self.net(x[i:i + self.batch_size], probs)
                    yb = y[i:i + self.batch_size]
                    total += (-float(loss_fn(logits, yb)) * len(yb) if self.text
                              else float((logits.argmax(-1) == yb).sum()))
                out.append(total / len(x))
        self.net.train()
        return out

    def _children(self) -> list[Design]:
        if self.search == "random":
            return [self.space.sample(self.rng) for _ in range(self.population)]
        ranked = [self.pop[i] for i in np.argsort(self.fitness)[::-1]]
        parents = ranked[: max(2, len(ranked) // 2)]
        kids = []
        for j in range(self.population):
            a = parents[int(self.rng.integers(len(parents)))]
            if j % 2 == 0 or len(parents) < 2:
                kids.append(self.space.mutate(a, self.rng))
            else:
                b = parents[int(self.rng.integers(len(parents)))]
                kids.append(self.space.mutate(self.space.crossover(a, b, self.rng), self.rng))
        return kids

    def after_epoch(self) -> None:
        if not self.pop:
            self.pop = [self.space.sample(self.rng) for _ in range(self.population)]
        self.fitness = self.score(self.pop)  # the weights moved: rescore the survivors
        for _ in range(self.generations):
            known = {self.space.key(d) for d in self.pop}
            kids = [d for d in self._children() if self.space.key(d) not in known]
            kids = list({self.space.key(d): d for d in kids}.values())
            pool, fit = self.pop + kids, self.fitness + self.score(kids)
            keep = np.argsort(fit, kind="stable")[::-1][: self.population]
            self.pop, self.fitness = [pool[i] for i in keep], [fit[i] for i in keep]

    def readout(self) -> Design:
        """The best design found on the supernet so far."""
        return dict(self.pop[int(np.argmax(self.fitness))])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "pop": self.pop, "fitness": self.fitness}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self.pop, self.fitness = [dict(d) for d in state["pop"]], [float(f) for f in state["fitness"]]
