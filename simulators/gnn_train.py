"""Train-and-evaluate simulator for node classification: each AGNN design is really trained with PyG (on CUDA when
present), with early stopping on validation accuracy and optional AGNN constrained parameter sharing; the env
``archgym/AGNN-v0`` is built here."""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from archgym.errors import ConfigError
from archgym.objective import SingleMetric
from archgym.registry import Problem
from archgym.simulator import Metric, Simulator
from archgym.space import Design

METRICS = (
    Metric("val_acc", "fraction", "max"),
    Metric("test_acc", "fraction", "max", report_only=True),
    Metric("params", "count", "min", scale=1e5),
    Metric("train_time", "s", "min"),
    Metric("latency", "ms", "min"),
    Metric("epochs", "count", "min", scale=100.0, report_only=True),
)


class GNNTrainSimulator(Simulator):
    """Trains the GNN a design describes on one node-classification data set and reports validation accuracy (the
    searched metric), test accuracy (report only), parameter count, training time and full-graph inference latency.

    Fidelity is the epoch budget (``max_epochs`` by default). Training stops early once validation accuracy has not
    improved for ``patience`` epochs; the reported accuracies are those of the epoch with the best validation accuracy
    (ties broken by lower validation loss). ``epochs_of(design)`` yields per-epoch results for ASHA-style schedulers.

    With ``share_weights`` (AGNN's constrained parameter sharing) each layer starts from the weights most recently
    trained for a homogeneous layer (same position, input/output shapes, heads, attention and activation function)
    and a model that inherited any layer trains for ``share_fraction`` of the epochs.

    Training is in-process (trusted code, ``isolation="inline"``); ``time_limit`` seconds per evaluation are enforced
    between epochs (the run fails with the reason), and ``isolation="process"`` gives the Evaluator's hard time-out.
    """

    name = "gnn-train"
    metrics = METRICS
    uses_workdir = False

    def __init__(
        self,
        dataset: str = "synthetic",
        data_root: str | None = None,
        depth: int = 2,
        min_depth: int | None = None,
        max_epochs: int = 200,
        patience: int = 30,
        share_weights: bool = False,
        share_fraction: float = 0.25,
        pool_size: int = 256,
        seed: int = 0,
        device: str = "auto",
        time_limit: float = 1800.0,
        isolation: str = "inline",
        synthetic: dict[str, Any] | None = None,
        heads: Sequence[int] | None = None,
        hidden: Sequence[int] | None = None,
    ) -> None:
        from archgym.search_spaces.agnn import HEADS, HIDDEN, agnn_space

        for field, ok in (("max_epochs", isinstance(max_epochs, int) and max_epochs >= 1),
                          ("patience", isinstance(patience, int) and patience >= 1),
                          ("share_fraction", 0.0 < share_fraction <= 1.0),
                          ("time_limit", time_limit > 0), ("pool_size", pool_size >= 1)):
            if not ok:
                raise ConfigError(f"gnn-train: bad {field}: {locals()[field]!r} (epochs and patience are integers >= 1, "
                                  "0 < share_fraction <= 1, time_limit > 0, pool_size >= 1)")
        if device not in ("auto", "cpu") and not device.startswith("cuda"):
            raise ConfigError(f"device {device!r} is not allowed; allowed: 'auto', 'cpu', 'cuda', 'cuda:N'")
        if isolation not in ("inline", "process"):
            raise ConfigError(f"isolation {isolation!r} is not allowed; allowed: 'inline', 'process'")
        from archgym.simulators.graph_data import DATASETS

        self.dataset = str(dataset).lower()
        if self.dataset not in DATASETS:
            raise ConfigError(f"dataset {dataset!r} is not known; allowed: {', '.join(DATASETS)}")
        self.data_root = str(data_root) if data_root else None
        self.space = agnn_space(depth, min_depth, heads or HEADS, hidden or HIDDEN)
        self.max_epochs = max_epochs
        self.patience = patience
        self.share_weights = bool(share_weights)
        self.share_fraction = float(share_fraction)
        self.pool_size = int(pool_size)
        self.seed = int(seed)
        self.device_name = device
        self.default_timeout = float(time_limit)
        self.isolation = isolation  # type: ignore[assignment]
        self.synthetic = dict(synthetic or {})
        self.deterministic = not self.share_weights  # with sharing, a result depends on what was trained before
        self.name = f"gnn-train-{self.dataset}"
        self._data: Any = None
        self._pool: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._times: list[float] = []

    # -- runtime state is rebuilt lazily in a worker process; the weight pool stays with the process that trains --

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_data=None, _pool=OrderedDict(), _times=[])
        return state

    @property
    def device(self) -> Any:
        import torch

        if self.device_name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device_name)

    def data(self) -> Any:
        """The data set on the training device (loaded once per process)."""
        if self._data is None:
            from archgym.simulators.graph_data import load_dataset

            self._data = load_dataset(self.dataset, self.data_root, seed=self.seed, **self.synthetic).to(self.device)
        return self._data

    def clear_pool(self) -> None:
        """Forget every shared weight (a fresh search with sharing starts from scratch)."""
        self._pool.clear()

    # -- training ---------------------------------------------------------------------------------------------

    def epochs_of(self, design: Design, fidelity: float | None = None) -> Iterator[dict[str, float]]:
        """Train ``design`` and yield, after every epoch, all declared metrics as of that epoch (best validation
        accuracy so far and the test accuracy at that epoch) plus ``epoch``, ``epoch_val_acc`` and ``train_loss``.

        A Ray Tune trainable reports each yielded dict, so ASHA can stop poor designs early; the last one equals what
        ``evaluate`` returns.
        """
        import torch
        import torch.nn.functional as F

        from archgym.search_spaces.agnn import build_model, count_parameters

        budget = self._epochs(fidelity)
        data = self.data()
        dev = self.device
        with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
            torch.manual_seed(self.seed)
            model = build_model(design, data.num_features, data.num_classes).to(dev)
            inherited = self._inherit(model) if self.share_weights else 0
            if inherited:
                budget = max(1, round(budget * self.share_fraction))
            opt = torch.optim.Adam(model.parameters(), lr=float(design["lr"]), weight_decay=float(design["weight_decay"]))
            n_params = float(count_parameters(model))
            best = {"val": -1.0, "loss": float("inf"), "test": 0.0, "epoch": 0}
            best_state: dict[str, Any] | None = None
            latency = float("nan")
            t0 = time.perf_counter()
            for epoch in range(1, budget + 1):
                model.train()
                opt.zero_grad()
                out = model(data.x, data.edge_index)
                loss = F.cross_entropy(out[data.train_mask], data.y[data.train_mask])
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"training loss is {loss.item()} at epoch {epoch}")
                loss.backward()
                opt.step()
                model.eval()
                with torch.no_grad():
                    out = model(data.x, data.edge_index)
                    pred = out.argmax(dim=1)
                    val_acc = float((pred[data.val_mask] == data.y[data.val_mask]).float().mean())
                    test_acc = float((pred[data.test_mask] == data.y[data.test_mask]).float().mean())
                    val_loss = float(F.cross_entropy(out[data.val_mask], data.y[data.val_mask]))
                if val_acc > best["val"] or (val_acc == best["val"] and val_loss < best["loss"]):
                    best = {"val": val_acc, "loss": val_loss, "test": test_acc, "epoch": epoch}
                    if self.share_weights:
                        best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if epoch == 1:
                    probe = time.perf_counter()
                    latency = self._latency(model, data)
                    t0 += time.perf_counter() - probe  # the latency probe is not training time
                train_time = time.perf_counter() - t0
                yield {"val_acc": best["val"], "test_acc": best["test"], "params": n_params, "train_time": train_time,
                       "latency": latency, "epochs": float(epoch), "epoch": float(epoch),
                       "epoch_val_acc": val_acc, "train_loss": float(loss.item())}
                if epoch - best["epoch"] >= self.patience:
                    break
                if time.perf_counter() - t0 > self.default_timeout:
                    raise TimeoutError(f"training exceeded the time limit of {self.default_timeout:g} s at epoch {epoch}")
        self._times.append(time.perf_counter() - t0)
        if self.share_weights and best_state is not None:
            model.load_state_dict(best_state)
            self._remember(model)

    @property
    def max_fidelity(self) -> int:
        """The largest epoch budget (what ASHA's ``max_t`` is set to)."""
        return self.max_epochs

    def evaluate_epochs(self, design: Design, max_fidelity: float | None = None, workdir: Path | None = None
                        ) -> Iterator[tuple[int, dict[str, float]]]:
        """The Ray runner's per-epoch protocol: ``(epochs_done, declared metrics)`` after every epoch."""
        for record in self.epochs_of(design, max_fidelity):
            yield int(record["epoch"]), {m.name: record[m.name] for m in self.metrics}

    def evaluate(self, design: Design, fidelity: float | None = None, workdir: Path | None = None) -> dict[str, float]:
        """Train with early stopping and return the declared metrics of the best-validation epoch."""
        last: dict[str, float] = {}
        for last in self.epochs_of(design, fidelity):
            pass
        return {m.name: last[m.name] for m in self.metrics}

    def cost_hint(self) -> float | None:
        """Mean seconds per training run so far in this process (None before the first)."""
        return sum(self._times) / len(self._times) if self._times else None

    def _epochs(self, fidelity: float | None) -> int:
        if fidelity is None:
            return self.max_epochs
        if not float(fidelity) >= 1:
            raise ConfigError(f"fidelity is the number of training epochs and must be >= 1, got {fidelity!r}")
        return int(fidelity)

    def _latency(self, model: Any, data: Any, repeats: int = 5) -> float:
        """Median milliseconds of one full-graph forward pass in evaluation mode."""
        import torch

        model.eval()
        times = []
        with torch.no_grad():
            for _ in range(repeats + 1):
                if data.x.is_cuda:
                    torch.cuda.synchronize()
                t = time.perf_counter()
                model(data.x, data.edge_index)
                if data.x.is_cuda:
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
        return float(sorted(times[1:])[repeats // 2] * 1e3)

    # -- AGNN constrained parameter sharing ---------------------------------------------------------------------

    def _inherit(self, model: Any) -> int:
        """Load each layer's weights from the pool where a homogeneous layer was trained; returns how many."""
        n = 0
        for spec, layer in zip(model.specs, model.layers):
            state = self._pool.get(spec.share_key())
            if state is not None:
                layer.load_state_dict({k: v.to(self.device) for k, v in state.items()})
                self._pool.move_to_end(spec.share_key())
                n += 1
        return n

    def _remember(self, model: Any) -> None:
        for spec, layer in zip(model.specs, model.layers):
            key = spec.share_key()
            self._pool[key] = {k: v.detach().to("cpu").clone() for k, v in layer.state_dict().items()}
            self._pool.move_to_end(key)
        while len(self._pool) > self.pool_size:
            self._pool.popitem(last=False)


def make_problem(
    dataset: str = "synthetic",
    data_root: str | None = None,
    depth: int = 2,
    min_depth: int | None = None,
    max_epochs: int = 200,
    patience: int = 30,
    share_weights: bool = False,
    share_fraction: float = 0.25,
    seed: int = 0,
    device: str = "auto",
    time_limit: float = 1800.0,
    isolation: str = "inline",
    synthetic_nodes: int | None = None,
    heads: list[int] | None = None,
    hidden: list[int] | None = None,
    max_steps: int = 200,
) -> Problem:
    """``archgym/AGNN-v0``: search the AGNN space on ``dataset`` (cora, citeseer, pubmed or synthetic); reward =
    validation accuracy. ``data_root`` (or ``$ARCHGYM_DATA``) holds ``<Name>/raw`` Planetoid files; ``heads`` and
    ``hidden`` may narrow the space (e.g. ``hidden=[4,8,16,32,64]`` on a CPU)."""
    synthetic = {"num_nodes": int(synthetic_nodes)} if synthetic_nodes else {}
    sim = GNNTrainSimulator(dataset, data_root or os.environ.get("ARCHGYM_DATA"), depth, min_depth, max_epochs,
                            patience, share_weights, share_fraction, seed=seed, device=device, time_limit=time_limit,
                            isolation=isolation, synthetic=synthetic, heads=heads, hidden=hidden)
    sim.data()  # missing data files fail here, once, with the message saying where to put them
    return Problem(f"agnn-{sim.dataset}", sim, SingleMetric("val_acc"), max_steps=max_steps,
                   info={"dataset": sim.dataset, "share_weights": sim.share_weights, "max_epochs": max_epochs})
