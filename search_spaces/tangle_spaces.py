"""The three TangleNAS spaces: a conv macro space, an AutoFormer-style vision transformer and a NanoGPT-style character
language model. Each is a DesignSpace, a supernet (weight-entangled or classic) whose architecture weights are one
probability vector per design parameter, and a standalone network built from one discrete design."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from archgym.errors import ConfigError
from archgym.search_spaces.entangled import (
    Attention,
    ClassicAttention,
    ClassicConvBlock,
    ClassicLayerNorm,
    ClassicLinear,
    ClassicMLP,
    ConvBlock,
    EntangledAttention,
    EntangledConvBlock,
    EntangledLayerNorm,
    EntangledLinear,
    EntangledMLP,
    MLP,
    hidden_width,
    mix,
    mix_depth,
    pad_last,
    prefix_masks,
)
from archgym.space import Design, DesignSpace, Ordinal, layered

FAMILIES = {"tangle-conv": "conv", "tangle-vit": "vit", "tangle-gpt": "gpt"}
DEFAULT_DATA = {"conv": {"dataset": "digits"}, "vit": {"dataset": "digits"}, "gpt": {"dataset": "text"}}


@dataclass(frozen=True)
class Task:
    """What the data fixes about a network: image shape and classes, or vocabulary size and context length."""

    kind: str  # "image" | "text"
    in_channels: int = 0
    image_size: int = 0
    n_classes: int = 0
    vocab_size: int = 0
    block_size: int = 0


# --------------------------------------------------------------------------------------------------------------------
# Design spaces
# --------------------------------------------------------------------------------------------------------------------


def _attach(space: DesignSpace, family: str, fixed: Mapping[str, Any], data: Mapping[str, Any] | None) -> DesignSpace:
    # The supernet family, its fixed sizes and the data it trains on travel with the space, so that a one-shot
    # searcher given only the space builds the matching supernet on the env's data.
    space.tangle = {"family": family, "fixed": dict(fixed), "data": dict(data or DEFAULT_DATA[family])}  # type: ignore[attr-defined]
    return space


def conv_space(channels: Sequence[int] = (8, 16, 32), kernels: Sequence[int] = (3, 5, 7), n_layers: int = 5,
               data: Mapping[str, Any] | None = None) -> DesignSpace:
    """Conv macro space: ``n_layers`` conv blocks, each with a channel choice ``c{i}`` and a kernel choice ``k{i}``."""
    if n_layers < 1:
        raise ConfigError(f"n_layers must be >= 1, got {n_layers}")
    params = []
    for i in range(n_layers):
        params += [Ordinal(f"c{i}", tuple(sorted(channels))), Ordinal(f"k{i}", tuple(sorted(kernels)))]
    return _attach(DesignSpace(params, name="tangle-conv"), "conv", {}, data)


def vit_space(embed_dims: Sequence[int] = (32, 48, 64), depths: Sequence[int] = (2, 3, 4), heads: Sequence[int] = (2, 3, 4),
              mlp_ratios: Sequence[float] = (2, 3, 4), head_dim: int = 16, patch: int | None = None,
              data: Mapping[str, Any] | None = None) -> DesignSpace:
    """AutoFormer-style ViT: a global embedding width and depth; heads and MLP ratio per layer (active up to depth)."""
    depths = tuple(sorted(depths))
    params = [Ordinal("embed_dim", tuple(sorted(embed_dims))), Ordinal("depth", depths)]
    params += layered("depth", max(depths), [Ordinal("heads", tuple(sorted(heads))),
                                             Ordinal("mlp_ratio", tuple(sorted(mlp_ratios)))], min_depth=min(depths))
    return _attach(DesignSpace(params, name="tangle-vit"), "vit", {"head_dim": head_dim, "patch": patch}, data)


def gpt_space(embed_dims: Sequence[int] = (32, 48, 64), layers: Sequence[int] = (2, 3, 4), heads: Sequence[int] = (2, 3, 4),
              mlp_ratios: Sequence[float] = (2, 3, 4), head_dim: int = 16, block_size: int = 32,
              data: Mapping[str, Any] | None = None) -> DesignSpace:
    """NanoGPT-style character LM: number of layers, heads, embedding width and MLP ratio (global, as in nanoGPT)."""
    params = [Ordinal("embed_dim", tuple(sorted(embed_dims))), Ordinal("n_layer", tuple(sorted(layers))),
              Ordinal("n_head", tuple(sorted(heads))), Ordinal("mlp_ratio", tuple(sorted(mlp_ratios)))]
    fixed = {"head_dim": head_dim, "block_size": block_size}
    return _attach(DesignSpace(params, name="tangle-gpt"), "gpt", fixed, data)


SPACE_BUILDERS = {"conv": conv_space, "vit": vit_space, "gpt": gpt_space}


def tangle_spec(space: DesignSpace) -> dict[str, Any]:
    """The supernet family, fixed sizes and data of a TangleNAS space; a clear error for any other space."""
    spec = getattr(space, "tangle", None)
    if spec is None:
        if space.name in FAMILIES:
            default = SPACE_BUILDERS[FAMILIES[space.name]]()
            if default.fingerprint() == space.fingerprint():
                return default.tangle  # type: ignore[attr-defined]
        raise ConfigError(
            f"space {space.name!r} has no weight-entangled supernet; one-shot searchers support the spaces "
            f"{', '.join(FAMILIES)} (envs archgym/TangleConv-v0, archgym/TangleViT-v0, archgym/TangleGPT-v0)"
        )
    return spec


def choices(space: DesignSpace) -> dict[str, tuple]:
    """Every parameter's choices, inactive ones included: one architecture-weight vector per entry."""
    return {n: tuple(p.values) for n, p in space.params.items()}  # type: ignore[attr-defined]


def design_from_indices(space: DesignSpace, index: Mapping[str, int]) -> Design:
    """The design that picks ``index[name]`` for every active parameter (inactive ones are dropped)."""
    out: Design = {}
    for name, p in space.params.items():
        if p.active(out):
            out[name] = p.value_at(int(index[name]))  # type: ignore[attr-defined]
    return space.validate(out)


def onehot_probs(space: DesignSpace, design: Design, device: Any = None) -> dict[str, Any]:
    """One-hot architecture weights selecting ``design`` (inactive parameters pick their first value: unused)."""
    out = {}
    for name, vals in choices(space).items():
        v = torch.zeros(len(vals), device=device)
        v[space.params[name].index(design[name]) if name in design else 0] = 1.0  # type: ignore[attr-defined]
        out[name] = v
    return out


def make_task(space: DesignSpace, data: Any) -> Task:
    """The Task of a loaded data set (``ImageData`` or ``TextData`` from archgym.simulators.tangle_data)."""
    family = tangle_spec(space)["family"]
    if family == "gpt":
        if not hasattr(data, "vocab"):
            raise ConfigError("the tangle-gpt space needs text data (dataset='text')")
        return Task("text", vocab_size=len(data.vocab), block_size=int(tangle_spec(space)["fixed"]["block_size"]))
    if not hasattr(data, "shape"):
        raise ConfigError(f"the {space.name} space needs image data (dataset='digits', 'fashion_mnist' or 'cifar10')")
    c, h, w = data.shape
    if h != w:
        raise ConfigError(f"{space.name} needs square images, got {h}x{w}")
    return Task("image", in_channels=c, image_size=h, n_classes=data.n_classes)


# --------------------------------------------------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------------------------------------------------


def build_supernet(space: DesignSpace, task: Task, entangled: bool = True):
    """The supernet of ``space``: weight-entangled (one shared weight per layer) or classic (weights per candidate)."""
    spec = tangle_spec(space)
    if spec["family"] == "conv":
        return ConvSupernet(choices(space), task, entangled)
    return TransformerSupernet(spec["family"], choices(space), task, spec["fixed"], entangled)


def build_network(space: DesignSpace, design: Design, task: Task):
    """The standalone network of one design, freshly initialised, with exactly the chosen shapes."""
    design = space.validate(design)
    spec = tangle_spec(space)
    if spec["family"] == "conv":
        return ConvNet(*conv_arch(design), task)
    return TransformerNet(spec["family"], *transformer_arch(spec["family"], design), task, spec["fixed"])


def count_params(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def sample_designs(space: DesignSpace, n: int, seed: int) -> list[Design]:
    """``n`` distinct uniformly random designs (fewer if the space is smaller), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    seen: dict[str, Design] = {}
    for _ in range(50 * n):
        d = space.sample(rng)
        seen.setdefault(space.key(d), d)
        if len(seen) == n:
            break
    return list(seen.values())


# --------------------------------------------------------------------------------------------------------------------
# Conv macro space networks
# --------------------------------------------------------------------------------------------------------------------


def conv_arch(design: Design) -> tuple[list[int], list[int]]:
    """(channels per layer, kernel per layer) of a conv design."""
    n = sum(1 for k in design if k.startswith("c"))
    return [design[f"c{i}"] for i in range(n)], [design[f"k{i}"] for i in range(n)]


def _pool_layers(n_layers: int, size: int) -> tuple[int, ...]:
    """2x2 max-pooling after layers 1 and 3 while the pooled map stays at least 4 pixels wide (so that every kernel
    choice up to 7x7 still sees distinct pixels: on a 2x2 map a 5x5 kernel acts like its 3x3 centre)."""
    out = []
    for i in (1, 3):
        if i < n_layers and size // 2 >= 4:
            out.append(i)
            size //= 2
    return tuple(out)


class ConvNet(nn.Module):
    """A standalone conv macro network: conv blocks of the chosen widths and kernels, global pooling, linear head."""

    def __init__(self, channels: Sequence[int], kernels: Sequence[int], task: Task) -> None:
        super().__init__()
        self.channels, self.kernels = list(channels), list(kernels)
        self.pool = _pool_layers(len(self.channels), task.image_size)
        blocks, in_c = [], task.in_channels
        for c, k in zip(self.channels, self.kernels):
            blocks.append(ConvBlock(in_c, c, k))
            in_c = c
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(in_c, task.n_classes)

    def forward(self, x: Tensor) -> Tensor:
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.pool:
                x = F.max_pool2d(x, 2)
        return self.head(x.mean((2, 3)))


class ConvSupernet(nn.Module):
    """The conv macro supernet: per layer one EntangledConvBlock (or ClassicConvBlock) over channels x kernels."""

    def __init__(self, choices: Mapping[str, tuple], task: Task, entangled: bool = True) -> None:
        super().__init__()
        self.task, self.entangled = task, entangled
        self.n_layers = sum(1 for k in choices if k.startswith("c"))
        self.pool = _pool_layers(self.n_layers, task.image_size)
        block_cls = EntangledConvBlock if entangled else ClassicConvBlock
        blocks, in_c = [], task.in_channels
        for i in range(self.n_layers):
            blocks.append(block_cls(in_c, choices[f"c{i}"], choices[f"k{i}"]))
            in_c = max(choices[f"c{i}"])
        self.blocks = nn.ModuleList(blocks)
        last = choices[f"c{self.n_layers - 1}"]
        self.head = EntangledLinear(in_c, task.n_classes) if entangled else ClassicLinear(last, task.n_classes)

    def forward(self, x: Tensor, probs: Mapping[str, Tensor]) -> Tensor:
        in_mask = None
        for i, block in enumerate(self.blocks):
            x = block(x, probs[f"c{i}"], probs[f"k{i}"], in_mask)
            if self.entangled:
                in_mask = block.out_mask(probs[f"c{i}"])
            if i in self.pool:
                x = F.max_pool2d(x, 2)
        z = x.mean((2, 3))
        if self.entangled:
            return self.head(z, in_mask=in_mask)
        return self.head(z, probs[f"c{self.n_layers - 1}"])

    def derive(self, design: Design) -> ConvNet:
        """The standalone network of ``design`` with the weights it inherits from this supernet."""
        channels, kernels = conv_arch(design)
        net = ConvNet(channels, kernels, self.task)
        in_c = self.task.in_channels
        for i, (c, k) in enumerate(zip(channels, kernels)):
            net.blocks[i] = self.blocks[i].extract(in_c, c, k)
            in_c = c
        if self.entangled:
            with torch.no_grad():
                net.head.weight.copy_(self.head.lin.weight[:, :in_c])
                net.head.bias.copy_(self.head.lin.bias)
        else:
            net.head = self.head.extract(in_c)
        return net.to(next(self.parameters()).device)


# --------------------------------------------------------------------------------------------------------------------
# Transformer networks (ViT and character GPT)
# --------------------------------------------------------------------------------------------------------------------


def transformer_arch(family: str, design: Design) -> tuple[int, list[int], list[float]]:
    """(embedding width, heads per layer, MLP ratio per layer) of a ViT or GPT design."""
    if family == "vit":
        depth = design["depth"]
        return design["embed_dim"], [design[f"layer{i}_heads"] for i in range(depth)], [
            design[f"layer{i}_mlp_ratio"] for i in range(depth)]
    depth = design["n_layer"]
    return design["embed_dim"], [design["n_head"]] * depth, [design["mlp_ratio"]] * depth


def _patch(task: Task, fixed: Mapping[str, Any]) -> int:
    p = fixed.get("patch") or (2 if task.image_size <= 16 else 4)
    if task.image_size % p:
        raise ConfigError(f"patch size {p} does not divide the image size {task.image_size}")
    return int(p)


def patchify(x: Tensor, p: int) -> Tensor:
    """``[B, C, H, W]`` images to ``[B, (H/p)*(W/p), C*p*p]`` patch vectors."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // p) * (w // p), c * p * p)


def _io(family: str, task: Task, fixed: Mapping[str, Any]) -> tuple[int, int, int]:
    """(input feature size or vocabulary, number of tokens, output size) of a transformer on ``task``."""
    if family == "vit":
        p = _patch(task, fixed)
        return task.in_channels * p * p, (task.image_size // p) ** 2, task.n_classes
    return task.vocab_size, task.block_size, task.vocab_size


def _input_layer(family: str, n_in: int, width: int) -> nn.Module:
    if family == "vit":
        return nn.Linear(n_in, width)
    emb = nn.Embedding(n_in, width)
    nn.init.normal_(emb.weight, std=0.02)
    return emb


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: x + attn(ln1(x)), then + mlp(ln2(x))."""

    def __init__(self, embed: int, heads: int, ratio: float, head_dim: int, causal: bool) -> None:
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(embed), Attention(embed, heads, head_dim, causal)
        self.ln2, self.mlp = nn.LayerNorm(embed), MLP(embed, hidden_width(ratio, embed))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class TransformerNet(nn.Module):
    """A standalone ViT (patches -> blocks -> mean pool -> classes) or character GPT (causal, logits per position)."""

    def __init__(self, family: str, embed: int, heads: Sequence[int], ratios: Sequence[float], task: Task,
                 fixed: Mapping[str, Any]) -> None:
        super().__init__()
        self.family, self.embed, self.heads, self.ratios = family, embed, list(heads), list(ratios)
        self.patch = _patch(task, fixed) if family == "vit" else 0
        n_in, n_tok, n_out = _io(family, task, fixed)
        self.inp = _input_layer(family, n_in, embed)
        self.pos = nn.Parameter(torch.randn(n_tok, embed) * 0.02)
        self.blocks = nn.ModuleList(TransformerBlock(embed, h, r, fixed["head_dim"], family == "gpt")
                                    for h, r in zip(heads, ratios))
        self.ln_f = nn.LayerNorm(embed)
        self.head = nn.Linear(embed, n_out)

    def forward(self, x: Tensor) -> Tensor:
        if self.family == "vit":
            z = self.inp(patchify(x, self.patch)) + self.pos
        else:
            z = self.inp(x) + self.pos[: x.shape[1]]
        for block in self.blocks:
            z = block(z)
        z = self.ln_f(z)
        return self.head(z.mean(1) if self.family == "vit" else z)


class TransformerSupernet(nn.Module):
    """ViT / GPT supernet over embedding width, depth, heads and MLP ratio, entangled or classic. Depth mixes the
    outputs after each candidate depth; every other choice is a mixed op."""

    def __init__(self, family: str, choices: Mapping[str, tuple], task: Task, fixed: Mapping[str, Any],
                 entangled: bool = True) -> None:
        super().__init__()
        self.family, self.task, self.fixed, self.entangled = family, task, dict(fixed), entangled
        self.widths = choices["embed_dim"]
        self.depth_name = "depth" if family == "vit" else "n_layer"
        self.depths = choices[self.depth_name]
        n_layers = max(self.depths)
        self.head_names = [f"layer{i}_heads" if family == "vit" else "n_head" for i in range(n_layers)]
        self.ratio_names = [f"layer{i}_mlp_ratio" if family == "vit" else "mlp_ratio" for i in range(n_layers)]
        self.patch = _patch(task, fixed) if family == "vit" else 0
        n_in, n_tok, n_out = _io(family, task, fixed)
        full, causal, hd = max(self.widths), family == "gpt", fixed["head_dim"]
        if entangled:
            self.inp = _input_layer(family, n_in, full)
            self.pos = nn.Parameter(torch.randn(n_tok, full) * 0.02)
            self.register_buffer("e_masks", prefix_masks(self.widths, full), persistent=False)
        else:
            self.inp = nn.ModuleList(_input_layer(family, n_in, e) for e in self.widths)
            self.pos = nn.ParameterList(nn.Parameter(torch.randn(n_tok, e) * 0.02) for e in self.widths)
        ln = EntangledLayerNorm if entangled else ClassicLayerNorm
        att = EntangledAttention if entangled else ClassicAttention
        mlp = EntangledMLP if entangled else ClassicMLP
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"ln1": ln(self.widths), "attn": att(self.widths, choices[self.head_names[i]], hd, causal),
                           "ln2": ln(self.widths), "mlp": mlp(self.widths, choices[self.ratio_names[i]])})
            for i in range(n_layers))
        self.ln_f = ln(self.widths)
        self.head = EntangledLinear(full, n_out) if entangled else ClassicLinear(self.widths, n_out)

    def _stem(self, x: Tensor, p_e: Tensor) -> Tensor:
        inp = patchify(x, self.patch) if self.family == "vit" else x
        n_tok = inp.shape[1]
        if self.entangled:
            return (self.inp(inp) + self.pos[:n_tok]) * mix(p_e, self.e_masks)
        full = max(self.widths)
        return sum(p_e[i] * pad_last(layer(inp) + pos[:n_tok], full)  # type: ignore[return-value]
                   for i, (layer, pos) in enumerate(zip(self.inp, self.pos)))

    def forward(self, x: Tensor, probs: Mapping[str, Tensor]) -> Tensor:
        p_e = probs["embed_dim"]
        z = self._stem(x, p_e)
        outs = []
        for i, b in enumerate(self.blocks):
            z = z + b["attn"](b["ln1"](z, p_e), p_e, probs[self.head_names[i]])
            z = z + b["mlp"](b["ln2"](z, p_e), p_e, probs[self.ratio_names[i]])
            outs.append(z)
        z = self.ln_f(mix_depth(outs, probs[self.depth_name], self.depths), p_e)
        if self.family == "vit":
            z = z.mean(1)
        if self.entangled:
            return self.head(z, in_mask=mix(p_e, self.e_masks))
        return self.head(z, p_e)

    def derive(self, design: Design) -> TransformerNet:
        """The standalone network of ``design`` with the weights it inherits from this supernet."""
        e, heads, ratios = transformer_arch(self.family, design)
        net = TransformerNet(self.family, e, heads, ratios, self.task, self.fixed)
        i_e = self.widths.index(e)
        with torch.no_grad():
            if self.entangled:
                if self.family == "vit":
                    net.inp.weight.copy_(self.inp.weight[:e])
                    net.inp.bias.copy_(self.inp.bias[:e])
                else:
                    net.inp.weight.copy_(self.inp.weight[:, :e])
                net.pos.copy_(self.pos[:, :e])
                net.head.weight.copy_(self.head.lin.weight[:, :e])
                net.head.bias.copy_(self.head.lin.bias)
            else:
                net.inp.load_state_dict(self.inp[i_e].state_dict())
                net.pos.copy_(self.pos[i_e])
                net.head = self.head.extract(e)
        for i, (h, r) in enumerate(zip(heads, ratios)):
            src, dst = self.blocks[i], net.blocks[i]
            dst.ln1, dst.attn = src["ln1"].extract(e), src["attn"].extract(e, h)
            dst.ln2, dst.mlp = src["ln2"].extract(e), src["mlp"].extract(e, r)
        net.ln_f = self.ln_f.extract(e)
        return net.to(next(self.parameters()).device)
