"""Train one discrete TangleNAS architecture standalone (from scratch) and report its validation metric: the env that
retrains what a one-shot search derives, and the fair yardstick for random architectures under the same budget."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from archgym.errors import ConfigError
from archgym.objective import SingleMetric
from archgym.registry import Problem
from archgym.search_spaces import tangle_spaces as ts
from archgym.simulator import Metric, Simulator
from archgym.simulators.tangle_data import ImageData, TextData, eval_starts, load_data, text_batch
from archgym.space import Design, DesignSpace


def pick_device(device: str = "auto") -> torch.device:
    """``auto``: the GPU when there is one, else the CPU; otherwise any torch device string."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ConfigError(f"device {device!r} is not a torch device; use 'auto', 'cpu' or 'cuda[:i]'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available here")
    return dev


@contextmanager
def torch_seed(seed: int, device: torch.device | None = None) -> Iterator[None]:
    """Seed torch for the block and restore the previous global RNG state after it (randomness stays local)."""
    cuda = [device.index or 0] if device is not None and device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(int(seed))
        yield


def loss_fn(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for class logits ``[B, C]`` or per-position LM logits ``[B, T, V]``."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


@torch.no_grad()
def evaluate_network(net: torch.nn.Module, data: ImageData | TextData, split: str, device: torch.device,
                     batch_size: int = 256, block: int = 32, max_windows: int = 256, forward: Any = None) -> float:
    """Accuracy (images) or mean next-character loss in nats (text) of ``net`` on ``split`` ('val' or 'test').
    ``forward`` replaces ``net(x)`` (e.g. a supernet with fixed architecture weights)."""
    run = forward or net
    if isinstance(data, TextData):
        ids = getattr(data, split)
        starts = eval_starts(len(ids), block, max_windows)
        total = 0.0
        for i in range(0, len(starts), batch_size):
            x, y = text_batch(ids, starts[i:i + batch_size], block)
            total += float(loss_fn(run(x.to(device)), y.to(device))) * len(x)
        return total / len(starts)
    x_all, y_all = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
    correct = 0
    for i in range(0, len(x_all), batch_size):
        logits = run(x_all[i:i + batch_size].to(device))
        correct += int((logits.argmax(-1).cpu() == y_all[i:i + batch_size]).sum())
    return correct / len(x_all)


def train_network(net: torch.nn.Module, data: ImageData | TextData, device: torch.device, seed: int, epochs: int = 10,
                  steps: int = 300, batch_size: int = 64, lr: float = 3e-3, weight_decay: float = 1e-4,
                  block: int = 32) -> dict[str, float]:
    """Train ``net`` with AdamW and a cosine schedule (images: ``epochs`` passes; text: ``steps`` random windows) and
    return validation and test metrics plus the parameter count and training time."""
    rng = np.random.default_rng(seed)
    net.to(device).train()
    text = isinstance(data, TextData)
    n_train = len(data.train) if text else len(data.x_train)
    per_epoch = max(1, int(np.ceil(n_train / batch_size)))
    total = steps if text else epochs * per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total))
    t0 = time.perf_counter()
    with torch_seed(int(rng.integers(2**31)), device):
        for step in range(total):
            if text:
                x, y = text_batch(data.train, rng.integers(0, n_train - block - 1, size=batch_size), block)
            else:
                if step % per_epoch == 0:
                    order = rng.permutation(n_train)
                idx = torch.as_tensor(order[(step % per_epoch) * batch_size:(step % per_epoch + 1) * batch_size])
                x, y = data.x_train[idx], data.y_train[idx]
            loss = loss_fn(net(x.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - t0
    net.eval()
    params = float(ts.count_params(net))
    if text:
        return {"val_loss": evaluate_network(net, data, "val", device, block=block),
                "test_loss": evaluate_network(net, data, "test", device, block=block),
                "params": params, "train_seconds": seconds}
    return {"val_acc": evaluate_network(net, data, "val", device), "test_acc": evaluate_network(net, data, "test", device),
            "params": params, "train_seconds": seconds}


IMAGE_METRICS = (Metric("val_acc", "fraction", "max"), Metric("test_acc", "fraction", "max", report_only=True),
                 Metric("params", "count", "min", report_only=True), Metric("train_seconds", "s", "min", report_only=True))
TEXT_METRICS = (Metric("val_loss", "nats/char", "min"), Metric("test_loss", "nats/char", "min", report_only=True),
                Metric("params", "count", "min", report_only=True), Metric("train_seconds", "s", "min", report_only=True))


class StandaloneTrainSimulator(Simulator):
    """Train a discrete architecture of a TangleNAS space from scratch on the space's data; report validation
    accuracy (images) or validation loss (text), test metric report-only. Seeded, so repeated designs are cached.
    ``fidelity`` in (0, 1] scales the training budget."""

    isolation = "inline"
    deterministic = True

    def __init__(self, space: DesignSpace, epochs: int = 10, steps: int = 300, batch_size: int = 64, lr: float = 3e-3,
                 weight_decay: float = 1e-4, seed: int = 0, device: str = "auto") -> None:
        spec = ts.tangle_spec(space)
        for name, v in (("epochs", epochs), ("steps", steps), ("batch_size", batch_size)):
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
        if not lr > 0:
            raise ConfigError(f"lr must be positive, got {lr!r}")
        pick_device(device)
        self.space, self.family = space, spec["family"]
        self.name = f"standalone-train-{self.family}"
        self.epochs, self.steps, self.batch_size, self.lr = epochs, steps, batch_size, lr
        self.weight_decay, self.seed, self.device = weight_decay, seed, device
        self.metrics = TEXT_METRICS if self.family == "gpt" else IMAGE_METRICS

    def evaluate(self, design: Design, fidelity: float | None = None, workdir: Path | None = None) -> dict[str, float]:
        spec = ts.tangle_spec(self.space)
        data = load_data(spec["data"])
        task = ts.make_task(self.space, data)
        device = pick_device(self.device)
        frac = 1.0 if fidelity is None else float(fidelity)
        if not 0 < frac <= 1:
            raise ConfigError(f"fidelity must be in (0, 1], got {fidelity}")
        with torch_seed(self.seed, device):
            net = ts.build_network(self.space, design, task)
        return train_network(net, data, device, self.seed, epochs=max(1, round(self.epochs * frac)),
                             steps=max(1, round(self.steps * frac)), batch_size=self.batch_size, lr=self.lr,
                             weight_decay=self.weight_decay, block=task.block_size or 32)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "epochs": self.epochs, "steps": self.steps, "batch_size": self.batch_size,
                "lr": self.lr, "seed": self.seed, "data": ts.tangle_spec(self.space)["data"]}


def _data_spec(dataset: str, data_root: str | None, max_train: int | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"dataset": dataset}
    if data_root is not None:
        spec["data_root"] = str(data_root)
    if max_train is not None:
        spec["max_train"] = int(max_train)
    return spec


def make_conv_problem(dataset: str = "digits", data_root: str | None = None, max_train: int | None = None,
                      channels: Sequence[int] = (8, 16, 32), kernels: Sequence[int] = (3, 5, 7), epochs: int = 10,
                      batch_size: int = 64, lr: float = 3e-3, seed: int = 0, device: str = "auto",
                      max_steps: int = 20) -> Problem:
    """TangleNAS conv macro space (5 layers, channels x kernel per layer); reward = validation accuracy after
    standalone training."""
    space = ts.conv_space(channels, kernels, data=_data_spec(dataset, data_root, max_train))
    sim = StandaloneTrainSimulator(space, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device)
    return Problem("TangleConv", sim, SingleMetric("val_acc"), max_steps)


def make_vit_problem(dataset: str = "digits", data_root: str | None = None, max_train: int | None = None,
                     embed_dims: Sequence[int] = (32, 48, 64), depths: Sequence[int] = (2, 3, 4),
                     heads: Sequence[int] = (2, 3, 4), mlp_ratios: Sequence[float] = (2, 3, 4), epochs: int = 10,
                     batch_size: int = 64, lr: float = 3e-3, seed: int = 0, device: str = "auto",
                     max_steps: int = 20) -> Problem:
    """AutoFormer-style ViT space; reward = validation accuracy after standalone training."""
    space = ts.vit_space(embed_dims, depths, heads, mlp_ratios, data=_data_spec(dataset, data_root, max_train))
    sim = StandaloneTrainSimulator(space, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device)
    return Problem("TangleViT", sim, SingleMetric("val_acc"), max_steps)


def make_gpt_problem(text_path: str | None = None, max_chars: int | None = None, embed_dims: Sequence[int] = (32, 48, 64),
                     layers: Sequence[int] = (2, 3, 4), heads: Sequence[int] = (2, 3, 4),
                     mlp_ratios: Sequence[float] = (2, 3, 4), block_size: int = 32, steps: int = 300,
                     batch_size: int = 32, lr: float = 3e-3, seed: int = 0, device: str = "auto",
                     max_steps: int = 20) -> Problem:
    """NanoGPT-style character LM space on a UTF-8 text (default: Python's pydoc topics); reward = -validation loss
    after standalone training."""
    data: dict[str, Any] = {"dataset": "text"}
    if text_path is not None:
        data["text_path"] = str(text_path)
    if max_chars is not None:
        data["max_chars"] = int(max_chars)
    space = ts.gpt_space(embed_dims, layers, heads, mlp_ratios, block_size=block_size, data=data)
    sim = StandaloneTrainSimulator(space, steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device)
    return Problem("TangleGPT", sim, SingleMetric("val_loss"), max_steps)
