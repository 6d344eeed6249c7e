"""The GraphNAS / Auto-GNN (AGNN) macro search space and the message-passing model each of its designs describes.

Per layer: attention function, aggregator, activation, heads and hidden units (the last layer outputs the classes, so
it has no hidden-units decision), plus learning rate, weight decay and dropout. Every attention function is its own
small scoring module; a layer is one PyG ``MessagePassing`` module that combines a scoring module and an aggregator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import add_self_loops, degree, remove_self_loops, softmax

from archgym.errors import ConfigError
from archgym.space import Categorical, DesignSpace, Integer, Ordinal, Param, layered

ATTENTIONS = ("gat", "gcn", "cos", "const", "gat_sym", "linear", "generalized_linear")
AGGREGATORS = ("sum", "mean", "max", "mlp")
ACTIVATIONS = ("sigmoid", "tanh", "relu", "linear", "softplus", "leaky_relu", "relu6", "elu")
HEADS = (1, 2, 4, 6, 8, 16)
HIDDEN = (4, 8, 16, 32, 64, 128, 256)
LEARNING_RATES = (1e-4, 5e-4, 1e-3, 5e-3, 1e-2)
WEIGHT_DECAYS = (0.0, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3)
DROPOUTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


# --------------------------------------------------------------------------------------------------------------------
# The space
# --------------------------------------------------------------------------------------------------------------------


def agnn_space(depth: int = 2, min_depth: int | None = None, heads: Sequence[int] = HEADS,
               hidden: Sequence[int] = HIDDEN) -> DesignSpace:
    """The AGNN macro space with ``depth`` layers, or a searched depth in ``min_depth..depth`` when ``min_depth`` is
    given (then a ``depth`` parameter decides how many layers are active). ``heads`` and ``hidden`` may narrow the
    head counts and hidden units (e.g. to fit a CPU budget); the default is the full GraphNAS/AGNN set."""
    for field, values, full in (("heads", heads, HEADS), ("hidden", hidden, HIDDEN)):
        if not values or any(v not in full for v in values):
            raise ConfigError(f"{field} must be a non-empty subset of {list(full)}, got {list(values)!r}")
    heads, hidden = tuple(sorted(set(heads))), tuple(sorted(set(hidden)))
    if not isinstance(depth, int) or depth < 1:
        raise ConfigError(f"depth must be an integer >= 1, got {depth!r}")
    lo = depth if min_depth is None else min_depth
    if not isinstance(lo, int) or not 1 <= lo <= depth:
        raise ConfigError(f"min_depth must be an integer in 1..{depth}, got {min_depth!r}")
    template = [
        Categorical("attention", ATTENTIONS),
        Categorical("aggregator", AGGREGATORS),
        Categorical("activation", ACTIVATIONS),
        Ordinal("heads", heads),
    ]
    per_layer = layered("depth", depth, template, prefix="layer", min_depth=lo)
    params: list[Param] = [Integer("depth", lo, depth)] if lo < depth else []
    for i in range(depth):
        params += per_layer[i * len(template):(i + 1) * len(template)]
        if i < depth - 1:  # layer i has hidden units only when a later layer exists (depth >= i + 2)
            cond = {"depth": tuple(range(i + 2, depth + 1))} if lo < i + 2 else None
            params.append(Ordinal(f"layer{i}_hidden", hidden, when=cond))
    params += [
        Ordinal("lr", LEARNING_RATES),
        Ordinal("weight_decay", WEIGHT_DECAYS),
        Ordinal("dropout", DROPOUTS),
    ]
    name = f"agnn-d{depth}" if lo == depth else f"agnn-d{lo}to{depth}"
    if heads != HEADS or hidden != HIDDEN:
        name += f"-h{max(heads)}-u{max(hidden)}"
    return DesignSpace(params, name=name)


@dataclass(frozen=True)
class LayerSpec:
    """The shape and functions of one layer of a design (what AGNN's homogeneity compares)."""

    index: int
    in_dim: int
    out_dim: int
    heads: int
    concat: bool
    attention: str
    aggregator: str
    activation: str

    def share_key(self) -> str:
        """Layers with equal keys have identically shaped weights and the same attention and activation functions,
        so one may start from the other's weights (AGNN's constrained parameter sharing)."""
        mlp = "mlp" if self.aggregator == "mlp" else "nomlp"
        return (f"{self.index}:{self.in_dim}->{self.heads}x{self.out_dim}:{'cat' if self.concat else 'avg'}:"
                f"{self.attention}:{self.activation}:{mlp}")


def n_layers(design: Mapping[str, Any]) -> int:
    """How many layers a design has (its ``depth`` when searched, else the number of attention decisions)."""
    if "depth" in design:
        return int(design["depth"])
    return sum(1 for k in design if k.startswith("layer") and k.endswith("_attention"))


def layer_specs(design: Mapping[str, Any], in_dim: int, num_classes: int) -> list[LayerSpec]:
    """Per-layer shapes: hidden layers concatenate their heads; the last layer averages heads of ``num_classes``."""
    depth = n_layers(design)
    specs, dim = [], in_dim
    for i in range(depth):
        last = i == depth - 1
        heads = int(design[f"layer{i}_heads"])
        out = num_classes if last else int(design[f"layer{i}_hidden"])
        specs.append(LayerSpec(i, dim, out, heads, not last, design[f"layer{i}_attention"],
                               design[f"layer{i}_aggregator"], design[f"layer{i}_activation"]))
        dim = out * heads if not last else out
    return specs


# --------------------------------------------------------------------------------------------------------------------
# Attention functions: each scores edges (target i, source j) from projected features of shape [E, heads, channels]
# --------------------------------------------------------------------------------------------------------------------


class _Score(nn.Module):
    """Base of the scoring modules: ``forward`` returns one coefficient per edge and head, shape [E, heads].
    ``learned`` scores are softmax-normalised and get attention dropout; fixed ones (gcn, const) do not."""

    learned = True

    def __init__(self, heads: int, channels: int) -> None:
        super().__init__()
        self.heads, self.channels = heads, channels

    def _vector(self) -> nn.Parameter:
        p = nn.Parameter(torch.empty(1, self.heads, self.channels))
        nn.init.xavier_uniform_(p)
        return p

    def forward(self, x_i: Tensor, x_j: Tensor, index: Tensor, source: Tensor, num_nodes: int) -> Tensor:
        raise NotImplementedError


class GATScore(_Score):
    """GAT: LeakyReLU(a_l . x_i + a_r . x_j), normalised by a softmax over each node's neighbours."""

    def __init__(self, heads: int, channels: int) -> None:
        super().__init__(heads, channels)
        self.a_l, self.a_r = self._vector(), self._vector()

    def forward(self, x_i, x_j, index, source, num_nodes):
        e = (x_i * self.a_l).sum(-1) + (x_j * self.a_r).sum(-1)
        return softmax(F.leaky_relu(e, 0.2), index, num_nodes=num_nodes)


class GATSymScore(GATScore):
    """Symmetric GAT: the GAT score of (i, j) plus that of (j, i), so both directions of an edge agree."""

    def forward(self, x_i, x_j, index, source, num_nodes):
        e = (x_i * self.a_l).sum(-1) + (x_j * self.a_r).sum(-1)
        e = e + (x_j * self.a_l).sum(-1) + (x_i * self.a_r).sum(-1)
        return softmax(F.leaky_relu(e, 0.2), index, num_nodes=num_nodes)


class CosScore(_Score):
    """Cosine-style: the inner product of the two endpoints after per-channel weighting, softmax-normalised."""

    def __init__(self, heads: int, channels: int) -> None:
        super().__init__(heads, channels)
        self.a_l, self.a_r = self._vector(), self._vector()

    def forward(self, x_i, x_j, index, source, num_nodes):
        e = ((x_i * self.a_l) * (x_j * self.a_r)).sum(-1)
        return softmax(e, index, num_nodes=num_nodes)


class LinearScore(_Score):
    """Linear: tanh(a . x_j), a score of the neighbour alone, softmax-normalised."""

    def __init__(self, heads: int, channels: int) -> None:
        super().__init__(heads, channels)
        self.a = self._vector()

    def forward(self, x_i, x_j, index, source, num_nodes):
        return softmax(torch.tanh((x_j * self.a).sum(-1)), index, num_nodes=num_nodes)


class GeneralizedLinearScore(_Score):
    """Generalised linear: w . tanh(W_l x_i + W_r x_j) with per-head matrices, softmax-normalised."""

    def __init__(self, heads: int, channels: int) -> None:
        super().__init__(heads, channels)
        self.w_l = nn.Parameter(torch.empty(heads, channels, channels))
        self.w_r = nn.Parameter(torch.empty(heads, channels, channels))
        for w in (self.w_l, self.w_r):
            nn.init.xavier_uniform_(w)
        self.w = self._vector()

    def forward(self, x_i, x_j, index, source, num_nodes):
        hidden = torch.einsum("ehc,hcd->ehd", x_i, self.w_l) + torch.einsum("ehc,hcd->ehd", x_j, self.w_r)
        return softmax((torch.tanh(hidden) * self.w).sum(-1), index, num_nodes=num_nodes)


class GCNScore(_Score):
    """GCN: the fixed symmetric normalisation 1 / sqrt(deg_i * deg_j) (self-loops included); no parameters."""

    learned = False

    def forward(self, x_i, x_j, index, source, num_nodes):
        inv = degree(index, num_nodes, dtype=x_i.dtype).clamp(min=1).pow(-0.5)
        return (inv[index] * inv[source]).unsqueeze(-1).expand(-1, self.heads)


class ConstScore(_Score):
    """Constant: every edge weighs 1 (the aggregator alone decides how neighbours combine); no parameters."""

    learned = False

    def forward(self, x_i, x_j, index, source, num_nodes):
        return x_i.new_ones(x_i.size(0), self.heads)


SCORES: dict[str, type[_Score]] = {
    "gat": GATScore, "gcn": GCNScore, "cos": CosScore, "const": ConstScore, "gat_sym": GATSymScore,
    "linear": LinearScore, "generalized_linear": GeneralizedLinearScore,
}

_AGGR = {"sum": "add", "mean": "mean", "max": "max", "mlp": "add"}

ACTIVATION_FNS: dict[str, Callable[[Tensor], Tensor]] = {
    "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": F.relu, "linear": lambda x: x, "softplus": F.softplus,
    "leaky_relu": F.leaky_relu, "relu6": F.relu6, "elu": F.elu,
}


# --------------------------------------------------------------------------------------------------------------------
# Layer and model
# --------------------------------------------------------------------------------------------------------------------


class SearchedLayer(MessagePassing):
    """One searched layer: project to ``heads x out_dim``, weigh each edge with the attention function, aggregate,
    then concatenate (hidden layers) or average (output layer) the heads. ``mlp`` sums and then applies a small MLP."""

    def __init__(self, spec: LayerSpec, attention_dropout: float = 0.0) -> None:
        if spec.attention not in SCORES:
            raise ConfigError(f"attention {spec.attention!r} is not known; allowed: {', '.join(SCORES)}")
        if spec.aggregator not in _AGGR:
            raise ConfigError(f"aggregator {spec.aggregator!r} is not known; allowed: {', '.join(_AGGR)}")
        super().__init__(aggr=_AGGR[spec.aggregator], node_dim=0)
        self.spec = spec
        self.attention_dropout = attention_dropout
        self.lin = nn.Linear(spec.in_dim, spec.heads * spec.out_dim, bias=False)
        self.score = SCORES[spec.attention](spec.heads, spec.out_dim)
        c = spec.out_dim
        self.mlp = nn.Sequential(nn.Linear(c, c), nn.ReLU(), nn.Linear(c, c)) if spec.aggregator == "mlp" else None
        self.bias = nn.Parameter(torch.zeros(spec.heads * c if spec.concat else c))
        nn.init.xavier_uniform_(self.lin.weight)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        n, s = x.size(0), self.spec
        h = self.lin(x).view(n, s.heads, s.out_dim)
        out = self.propagate(edge_index, x=h, size=(n, n))
        if self.mlp is not None:
            out = self.mlp(out)
        out = out.reshape(n, s.heads * s.out_dim) if s.concat else out.mean(dim=1)
        return out + self.bias

    def message(self, x_i: Tensor, x_j: Tensor, edge_index_i: Tensor, edge_index_j: Tensor, size_i: int) -> Tensor:
        alpha = self.score(x_i, x_j, edge_index_i, edge_index_j, size_i)
        if self.score.learned:
            alpha = F.dropout(alpha, p=self.attention_dropout, training=self.training)
        return x_j * alpha.unsqueeze(-1)


class AGNNModel(nn.Module):
    """The network a design describes: dropout -> searched layer -> activation, once per layer."""

    def __init__(self, design: Mapping[str, Any], in_dim: int, num_classes: int) -> None:
        super().__init__()
        self.specs = layer_specs(design, in_dim, num_classes)
        self.dropout = float(design["dropout"])
        self.layers = nn.ModuleList(SearchedLayer(s, attention_dropout=self.dropout) for s in self.specs)
        for s in self.specs:
            if s.activation not in ACTIVATION_FNS:
                raise ConfigError(f"activation {s.activation!r} is not known; allowed: {', '.join(ACTIVATION_FNS)}")
        self.activations = [ACTIVATION_FNS[s.activation] for s in self.specs]

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        edge_index = with_self_loops(edge_index, x.size(0))
        for i, (layer, act) in enumerate(zip(self.layers, self.activations)):
            x = input_dropout(x, self.dropout, self.training) if i == 0 else F.dropout(x, self.dropout, self.training)
            x = act(layer(x, edge_index))
        return x


def input_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Dropout that draws random numbers only for non-zero entries: the same distribution as ``F.dropout`` (zeros
    stay zero either way) but several times faster on sparse bag-of-words features such as Planetoid's."""
    if not training or p == 0.0:
        return x
    nz = x.nonzero(as_tuple=True)
    keep = torch.rand(nz[0].numel(), device=x.device) >= p
    out = torch.zeros_like(x)
    out[nz] = x[nz] * keep / (1.0 - p)
    return out


def with_self_loops(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Exactly one self-loop per node, so every node attends to itself and has a non-empty neighbourhood."""
    edge_index, _ = remove_self_loops(edge_index)
    edge_index, _ = add_self_loops(edge_index, num_nodes=num_nodes)
    return edge_index


def build_model(design: Mapping[str, Any], in_dim: int, num_classes: int) -> AGNNModel:
    """The model of a (validated) AGNN design for inputs of ``in_dim`` features and ``num_classes`` outputs."""
    return AGNNModel(design, in_dim, num_classes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def reference_design(kind: str, depth: int = 2) -> dict[str, Any]:
    """Hand-designed references in this space: ``gcn`` (Kipf & Welling: 16 hidden, 1 head, ReLU, lr 0.01, wd 5e-4,
    dropout 0.5) and ``gat`` (Velickovic et al.: 8 heads x 8 hidden, ELU, lr 5e-3, wd 5e-4, dropout 0.6)."""
    if kind == "gcn":
        layer = {"attention": "gcn", "aggregator": "sum", "heads": 1, "hidden": 16}
        acts, train = ("relu", "linear"), {"lr": 1e-2, "weight_decay": 5e-4, "dropout": 0.5}
    elif kind == "gat":
        layer = {"attention": "gat", "aggregator": "sum", "heads": 8, "hidden": 8}
        acts, train = ("elu", "linear"), {"lr": 5e-3, "weight_decay": 5e-4, "dropout": 0.6}
    else:
        raise ConfigError(f"reference design {kind!r} is not known; allowed: 'gcn', 'gat'")
    design: dict[str, Any] = {}
    for i in range(depth):
        last = i == depth - 1
        design[f"layer{i}_attention"] = layer["attention"]
        design[f"layer{i}_aggregator"] = layer["aggregator"]
        design[f"layer{i}_activation"] = acts[1] if last else acts[0]
        design[f"layer{i}_heads"] = 1 if (last and kind == "gat") else layer["heads"]
        if not last:
            design[f"layer{i}_hidden"] = layer["hidden"]
    return {**design, **train}
