"""Torch proxy regressors: an MLP ensemble trained as one batched network (members differ in initialisation and in
bootstrap weights), and a graph ensemble (dense GIN layers of torch-geometric) over the architecture DAG. Saved as a
torch state dict (loaded with ``weights_only=True``) beside the JSON config."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from archgym.errors import LogError
from archgym.proxies.models import Regressor


def device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class _EnsembleLinear(nn.Module):
    """``n_members`` independent linear layers applied at once to inputs shaped (members, batch, in)."""

    def __init__(self, n_members: int, n_in: int, n_out: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(n_in)
        self.weight = nn.Parameter(torch.empty(n_members, n_in, n_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_members, 1, n_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class _EnsembleMLP(nn.Module):
    def __init__(self, n_members: int, n_in: int, hidden: int, layers: int) -> None:
        super().__init__()
        dims = [n_in] + [hidden] * layers
        self.hidden = nn.ModuleList(_EnsembleLinear(n_members, a, b) for a, b in zip(dims, dims[1:]))
        self.out = _EnsembleLinear(n_members, dims[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x).squeeze(-1)


class _TorchEnsemble(Regressor):
    """Target standardisation, the training loop and state-dict persistence shared by the torch models.

    ``epochs=0`` sizes training automatically: about ``auto_steps`` optimiser steps (20..300 epochs).
    """

    auto_steps = 1200

    def __init__(self, n_members: int, hidden: int, layers: int, epochs: int, batch_size: int, lr: float,
                 weight_decay: float, seed: int) -> None:
        self.n_members = n_members
        self.hidden = hidden
        self.layers = layers
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.seed = seed
        self.net: nn.Module | None = None
        self.y_mean = 0.0
        self.y_std = 1.0
        self.n_in = 0

    def _build(self) -> nn.Module:
        raise NotImplementedError

    def _tensors(self, X: Any) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def _forward(self, net: nn.Module, parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Predictions shaped (members, rows) in standardised units."""
        raise NotImplementedError

    def fit(self, X: Any, y: np.ndarray) -> _TorchEnsemble:
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        dev = device()
        self.y_mean, self.y_std = float(np.mean(y)), float(np.std(y)) or 1.0
        parts = self._tensors(X)
        n = len(y)
        target = torch.as_tensor((y - self.y_mean) / self.y_std, dtype=torch.float32)
        # bootstrap as Poisson(1) weights per member and sample: each member sees its own resample
        weights = torch.poisson(torch.ones(self.n_members, n), generator=gen) if self.n_members > 1 else torch.ones(1, n)
        self.net = self._build().to(dev)
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        steps_per_epoch = max(1, math.ceil(n / self.batch_size))
        epochs = self.epochs or int(np.clip(math.ceil(self.auto_steps / steps_per_epoch), 20, 300))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
        parts = tuple(p.to(dev) for p in parts)
        target, weights = target.to(dev), weights.to(dev)
        self.net.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen).to(dev)
            for s in range(steps_per_epoch):
                idx = perm[s * self.batch_size:(s + 1) * self.batch_size]
                pred = self._forward(self.net, tuple(p[idx] for p in parts))
                w = weights[:, idx]
                loss = (w * (pred - target[idx]) ** 2).sum() / w.sum().clamp_min(1.0)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        self.net.eval()
        return self

    @torch.no_grad()
    def predict_dist(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        assert self.net is not None, "predict before fit"
        dev = next(self.net.parameters()).device
        parts = tuple(p.to(dev) for p in self._tensors(X))
        n = parts[0].shape[0]
        chunks = [self._forward(self.net, tuple(p[i:i + 8192] for p in parts)) for i in range(0, n, 8192)]
        preds = (torch.cat(chunks, dim=1) if chunks else torch.zeros(self.n_members, 0)).cpu().numpy().astype(np.float64)
        preds = preds * self.y_std + self.y_mean
        return preds.mean(axis=0), preds.std(axis=0)

    def config(self) -> dict[str, Any]:
        return {"n_members": self.n_members, "hidden": self.hidden, "layers": self.layers, "epochs": self.epochs,
                "batch_size": self.batch_size, "lr": self.lr, "weight_decay": self.weight_decay, "seed": self.seed}

    def save(self, directory: Path) -> str:
        assert self.net is not None, "save before fit"
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        state["_y_stats"] = torch.tensor([self.y_mean, self.y_std], dtype=torch.float64)
        state["_n_in"] = torch.tensor([self.n_in], dtype=torch.int64)
        torch.save(state, directory / "model.pt")
        return "model.pt"

    def load(self, directory: Path, filename: str) -> _TorchEnsemble:
        path = directory / filename
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear error
            raise LogError(f"{path} is not a proxy state dict ({type(exc).__name__}: {exc})") from None
        self.y_mean, self.y_std = (float(v) for v in state.pop("_y_stats"))
        self.n_in = int(state.pop("_n_in")[0])
        self.net = self._build()
        self.net.load_state_dict(state)
        self.net.to(device()).eval()
        return self


class MLPEnsembleRegressor(_TorchEnsemble):
    """An ensemble of MLPs on the encoded design; uncertainty is the spread of the members."""

    kind = "mlp"

    def __init__(self, n_members: int = 5, hidden: int = 128, layers: int = 2, epochs: int = 0, batch_size: int = 128,
                 lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0) -> None:
        super().__init__(n_members, hidden, layers, epochs, batch_size, lr, weight_decay, seed)

    def _build(self) -> nn.Module:
        return _EnsembleMLP(self.n_members, self.n_in, self.hidden, self.layers)

    def _tensors(self, X: np.ndarray) -> tuple[torch.Tensor, ...]:
        self.n_in = self.n_in or X.shape[1]
        return (torch.as_tensor(np.asarray(X), dtype=torch.float32),)

    def _forward(self, net: nn.Module, parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
        x = parts[0]
        return net(x.unsqueeze(0).expand(self.n_members, *x.shape))


class _GraphNet(nn.Module):
    """Dense GIN layers over a fixed-size DAG (both edge directions, marked apart), read out at the output node and
    by a sum over nodes."""

    def __init__(self, n_in: int, hidden: int, layers: int) -> None:
        super().__init__()
        from torch_geometric.nn import DenseGINConv

        self.embed = nn.Linear(n_in, hidden)
        self.fwd = nn.ModuleList(DenseGINConv(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)),
                                              train_eps=True) for _ in range(layers))
        self.bwd = nn.ModuleList(DenseGINConv(nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, hidden)),
                                              train_eps=True) for _ in range(layers))
        self.head = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.embed(x))
        adj_t = adj.transpose(1, 2)
        for f, b in zip(self.fwd, self.bwd):
            h = torch.relu(f(h, adj_t) + b(h, adj)) + h
        return self.head(torch.cat([h[:, -1], h.sum(dim=1)], dim=-1)).squeeze(-1)


class _GraphEnsembleNet(nn.Module):
    def __init__(self, n_members: int, n_in: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.members = nn.ModuleList(_GraphNet(n_in, hidden, layers) for _ in range(n_members))

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x, adj) for m in self.members])


class GraphEnsembleRegressor(_TorchEnsemble):
    """A graph predictor over the architecture DAG (node = operation, edge = data flow), as an ensemble.

    Takes the ``(node features, edge list)`` pairs that ``DagLayout.graph`` builds; every graph of a space has the
    same node count, so batches are dense adjacency tensors.
    """

    kind = "gnn"
    inputs = "graph"

    def __init__(self, n_members: int = 3, hidden: int = 64, layers: int = 3, epochs: int = 0, batch_size: int = 128,
                 lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0) -> None:
        super().__init__(n_members, hidden, layers, epochs, batch_size, lr, weight_decay, seed)

    def _build(self) -> nn.Module:
        return _GraphEnsembleNet(self.n_members, self.n_in, self.hidden, self.layers)

    def _tensors(self, graphs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[torch.Tensor, ...]:
        if not graphs:
            return torch.zeros(0, 1, max(self.n_in, 1)), torch.zeros(0, 1, 1)
        n_nodes, n_feat = graphs[0][0].shape
        self.n_in = self.n_in or n_feat
        x = torch.as_tensor(np.stack([g[0] for g in graphs]), dtype=torch.float32)
        adj = torch.zeros(len(graphs), n_nodes, n_nodes)
        for i, (_, edges) in enumerate(graphs):
            adj[i, edges[0], edges[1]] = 1.0
        return x, adj

    def _forward(self, net: nn.Module, parts: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return net(*parts)
