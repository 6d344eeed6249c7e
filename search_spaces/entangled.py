"""Weight-entangled mixed operations (TangleNAS) beside the classic non-entangled mixed operation, plus the standalone
operations both reduce to when the architecture weights are one-hot.

Entangled: every choice of a dimension is a slice of one shared, largest weight (the first ``c`` output channels, the
centre ``k x k`` of the largest kernel, the first ``h`` heads, ...). The mixed weight is the architecture-weighted sum of
the zero-padded slices and the layer runs ONE forward pass with it, so the supernet costs about as much as its largest
member. A weighted sum of nested zero-padded slices is the full weight times a mask whose entries are the summed
probabilities of the slices that contain them; joint choices (channels x kernel, heads x width, MLP ratio x width)
weight every combination by the product of the per-dimension probabilities.

Classic: every candidate owns its weights, runs its own forward pass, and the outputs (zero-padded to the largest width)
are summed with the architecture weights, as in DARTS.

Every mixed op takes the probability vectors of the choices it depends on (``p_c``, ``p_k``, ``p_e``, ...), in the
order of the choice tuples given at construction. Activations carry the largest width; channels beyond a chosen width
are zero, so a one-hot weighting reproduces the chosen standalone op exactly.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

# --------------------------------------------------------------------------------------------------------------------
# Slices and masks
# --------------------------------------------------------------------------------------------------------------------


def centre_slice(k: int, full: int) -> slice:
    """The centre ``k`` of ``full`` positions: a smaller kernel is the centre of the largest one."""
    start = (full - k) // 2
    return slice(start, start + k)


def prefix_masks(sizes: Sequence[int], full: int) -> Tensor:
    """``[len(sizes), full]`` indicators: row ``i`` is 1 on the first ``sizes[i]`` positions (a width slice)."""
    idx = torch.arange(full)
    return (idx[None, :] < torch.as_tensor(list(sizes))[:, None]).float()


def kernel_masks(kernels: Sequence[int], full: int) -> Tensor:
    """``[len(kernels), full, full]`` indicators of the centre ``k x k`` window of a ``full x full`` kernel."""
    out = torch.zeros(len(kernels), full, full)
    for i, k in enumerate(kernels):
        s = centre_slice(k, full)
        out[i, s, s] = 1.0
    return out


def mix(probs: Tensor, masks: Tensor) -> Tensor:
    """``sum_i probs[i] * masks[i]``: the weighted sum of the zero-padded slice indicators of one dimension."""
    return torch.tensordot(probs.to(masks.dtype), masks, dims=1)


def pad_last(x: Tensor, full: int, dim: int = -1) -> Tensor:
    """Zero-pad dimension ``dim`` of ``x`` up to ``full`` entries (how a narrow candidate's output joins the mix)."""
    missing = full - x.shape[dim]
    if missing == 0:
        return x
    shape = list(x.shape)
    shape[dim] = missing
    return torch.cat([x, x.new_zeros(shape)], dim=dim)


def _check_choices(name: str, values: Sequence[int | float]) -> tuple:
    vals = tuple(values)
    if not vals or any(v <= 0 for v in vals):
        raise ValueError(f"{name}: choices must be a non-empty list of positive numbers, got {vals}")
    return vals


def hidden_width(ratio: float, width: int) -> int:
    """The MLP hidden width of a ratio at an embedding width (rounded to an integer, at least 1)."""
    return max(1, int(round(ratio * width)))


# --------------------------------------------------------------------------------------------------------------------
# Standalone operations (what a discrete design builds; also the candidates of the classic mixed ops)
# --------------------------------------------------------------------------------------------------------------------


class ConvBlock(nn.Module):
    """Convolution (stride 1, 'same' padding, no bias) -> batch norm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, track_running_stats: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, track_running_stats=track_running_stats)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


class Attention(nn.Module):
    """Multi-head self-attention with ``heads`` heads of fixed size ``head_dim`` on width ``embed`` (AutoFormer style)."""

    def __init__(self, embed: int, heads: int, head_dim: int, causal: bool = False) -> None:
        super().__init__()
        self.heads, self.head_dim, self.causal = heads, head_dim, causal
        self.qkv = nn.Linear(embed, 3 * heads * head_dim)
        self.proj = nn.Linear(heads * head_dim, embed)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(_attend(self.qkv(x), self.heads, self.head_dim, self.causal))


def _attend(qkv: Tensor, heads: int, head_dim: int, causal: bool) -> Tensor:
    b, t, _ = qkv.shape
    q, k, v = qkv.view(b, t, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return y.transpose(1, 2).reshape(b, t, heads * head_dim)


class MLP(nn.Module):
    """Linear -> GELU -> linear with a hidden width of ``hidden``."""

    def __init__(self, embed: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(embed, hidden)
        self.fc2 = nn.Linear(hidden, embed)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


# --------------------------------------------------------------------------------------------------------------------
# Entangled mixed operations
# --------------------------------------------------------------------------------------------------------------------


class EntangledConvBlock(nn.Module):
    """Conv -> BN -> ReLU with output-channel choices and kernel-size choices sharing one ``[C, C_in, K, K]`` weight.

    Mixed weight = sum over (c, k) of p_c * p_k * pad(W[:c, :, centre k]) (= W times the outer product of the channel
    and kernel masks). Batch norm is per channel, so the sliced norm of each candidate is the full norm restricted to
    its channels; the output is multiplied by the channel mask, which zeroes the channels a narrow choice lacks.
    """

    def __init__(self, in_channels: int, channels: Sequence[int], kernels: Sequence[int]) -> None:
        super().__init__()
        self.channels = _check_choices("channels", channels)
        self.kernels = _check_choices("kernels", kernels)
        if any(k % 2 == 0 for k in self.kernels):
            raise ValueError(f"kernels: sizes must be odd (centre slices), got {self.kernels}")
        self.in_channels, self.max_c, self.max_k = in_channels, max(self.channels), max(self.kernels)
        self.weight = nn.Parameter(torch.empty(self.max_c, in_channels, self.max_k, self.max_k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.bn = nn.BatchNorm2d(self.max_c, track_running_stats=False)
        self.register_buffer("c_masks", prefix_masks(self.channels, self.max_c), persistent=False)
        self.register_buffer("k_masks", kernel_masks(self.kernels, self.max_k), persistent=False)

    def forward(self, x: Tensor, p_c: Tensor, p_k: Tensor, in_mask: Tensor | None = None) -> Tensor:
        m_c, m_k = mix(p_c, self.c_masks), mix(p_k, self.k_masks)
        w = self.weight * m_c[:, None, None, None] * m_k[None, None]
        if in_mask is not None:
            w = w * in_mask[None, :, None, None]
        y = F.relu(self.bn(F.conv2d(x, w, padding=self.max_k // 2)))
        return y * m_c[None, :, None, None]

    def out_mask(self, p_c: Tensor) -> Tensor:
        """The mixed output-channel mask, which the next layer applies to its input channels."""
        return mix(p_c, self.c_masks)

    def extract(self, in_c: int, c: int, k: int) -> ConvBlock:
        """The standalone block of choice (c, k) on ``in_c`` input channels, with the inherited weight slice."""
        block = ConvBlock(in_c, c, k)
        s = centre_slice(k, self.max_k)
        with torch.no_grad():
            block.conv.weight.copy_(self.weight[:c, :in_c, s, s])
            block.bn.weight.copy_(self.bn.weight[:c])
            block.bn.bias.copy_(self.bn.bias[:c])
        return block


class EntangledLinear(nn.Module):
    """A linear layer whose width choices are slices ``W[:out, :in]`` of one weight; the masks are the mixed slice
    indicators of the input and output dimensions (or a joint 2-D mask with its bias mask)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.lin = nn.Linear(in_features, out_features, bias=bias)

    def forward(self, x: Tensor, in_mask: Tensor | None = None, out_mask: Tensor | None = None,
                joint: tuple[Tensor, Tensor] | None = None) -> Tensor:
        w, b = self.lin.weight, self.lin.bias
        if joint is not None:
            w, b = w * joint[0], (b * joint[1] if b is not None else None)
        if out_mask is not None:
            w = w * out_mask[:, None]
            b = b * out_mask if b is not None else None
        if in_mask is not None:
            w = w * in_mask[None, :]
        return F.linear(x, w, b)


class EntangledLayerNorm(nn.Module):
    """Layer norm over width choices with one shared affine weight. Statistics depend on the width, so the output is
    the weighted sum of each choice's zero-padded norm over its first ``e`` features (elementwise, no weight copies)."""

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        self.widths = _check_choices("widths", widths)
        self.full = max(self.widths)
        self.weight = nn.Parameter(torch.ones(self.full))
        self.bias = nn.Parameter(torch.zeros(self.full))

    def forward(self, x: Tensor, p_e: Tensor) -> Tensor:
        out = 0.0
        for i, e in enumerate(self.widths):
            y = F.layer_norm(x[..., :e], (e,), self.weight[:e], self.bias[:e])
            out = out + p_e[i] * pad_last(y, self.full)
        return out  # type: ignore[return-value]

    def extract(self, e: int) -> nn.LayerNorm:
        ln = nn.LayerNorm(e)
        with torch.no_grad():
            ln.weight.copy_(self.weight[:e])
            ln.bias.copy_(self.bias[:e])
        return ln


class EntangledAttention(nn.Module):
    """Self-attention with head-count choices (heads of fixed size) x embedding-width choices in one weight pair.

    The q/k/v rows of head ``j`` are kept with the summed probability of the head counts above ``j``, the input columns
    with that of the widths above the column: the joint (heads, width) candidates are weighted by the outer product.
    One attention pass with the largest number of heads; heads beyond a one-hot choice are exactly zero.
    """

    def __init__(self, widths: Sequence[int], heads: Sequence[int], head_dim: int, causal: bool = False) -> None:
        super().__init__()
        self.widths, self.heads = _check_choices("widths", widths), _check_choices("heads", heads)
        self.head_dim, self.causal = head_dim, causal
        self.max_e, self.max_h = max(self.widths), max(self.heads)
        inner = self.max_h * head_dim
        self.qkv = EntangledLinear(self.max_e, 3 * inner)
        self.proj = EntangledLinear(inner, self.max_e)
        self.register_buffer("e_masks", prefix_masks(self.widths, self.max_e), persistent=False)
        self.register_buffer("h_masks", prefix_masks([h * head_dim for h in self.heads], inner), persistent=False)

    def forward(self, x: Tensor, p_e: Tensor, p_h: Tensor) -> Tensor:
        m_e, m_h = mix(p_e, self.e_masks), mix(p_h, self.h_masks)
        qkv = self.qkv(x, in_mask=m_e, out_mask=m_h.repeat(3))
        return self.proj(_attend(qkv, self.max_h, self.head_dim, self.causal), in_mask=m_h, out_mask=m_e)

    def extract(self, e: int, h: int) -> Attention:
        att = Attention(e, h, self.head_dim, self.causal)
        inner, n = self.max_h * self.head_dim, h * self.head_dim
        rows = torch.cat([torch.arange(part * inner, part * inner + n) for part in range(3)])
        with torch.no_grad():
            att.qkv.weight.copy_(self.qkv.lin.weight[rows, :e])
            att.qkv.bias.copy_(self.qkv.lin.bias[rows])
            att.proj.weight.copy_(self.proj.lin.weight[:e, :n])
            att.proj.bias.copy_(self.proj.lin.bias[:e])
        return att


class EntangledMLP(nn.Module):
    """MLP with ratio choices x width choices: the hidden width ``ratio * e`` depends on both, so the mixed weight sums
    the (ratio, width) slices ``W1[:ratio*e, :e]`` / ``W2[:e, :ratio*e]`` with the product weights p_r * p_e."""

    def __init__(self, widths: Sequence[int], ratios: Sequence[float]) -> None:
        super().__init__()
        self.widths, self.ratios = _check_choices("widths", widths), _check_choices("mlp ratios", ratios)
        self.max_e = max(self.widths)
        pairs = list(itertools.product(range(len(self.ratios)), range(len(self.widths))))
        hidden = [hidden_width(self.ratios[r], self.widths[e]) for r, e in pairs]
        self.max_hidden = max(hidden)
        self.fc1 = EntangledLinear(self.max_e, self.max_hidden)
        self.fc2 = EntangledLinear(self.max_hidden, self.max_e)
        self.register_buffer("row_masks", prefix_masks(hidden, self.max_hidden), persistent=False)
        self.register_buffer("col_masks", prefix_masks([self.widths[e] for _, e in pairs], self.max_e), persistent=False)

    def forward(self, x: Tensor, p_e: Tensor, p_r: Tensor) -> Tensor:
        pj = torch.outer(p_r, p_e).flatten().to(self.row_masks.dtype)
        hid = mix(pj, self.row_masks)  # bias mask of fc1
        m_e = mix(pj, self.col_masks)  # = the width mask (summed over ratios)
        joint1 = torch.einsum("j,jh,je->he", pj, self.row_masks, self.col_masks)
        h = F.gelu(self.fc1(x, joint=(joint1, hid)))
        return self.fc2(h, joint=(joint1.t(), m_e))

    def extract(self, e: int, ratio: float) -> MLP:
        n = hidden_width(ratio, e)
        mlp = MLP(e, n)
        with torch.no_grad():
            mlp.fc1.weight.copy_(self.fc1.lin.weight[:n, :e])
            mlp.fc1.bias.copy_(self.fc1.lin.bias[:n])
            mlp.fc2.weight.copy_(self.fc2.lin.weight[:e, :n])
            mlp.fc2.bias.copy_(self.fc2.lin.bias[:e])
        return mlp


def mix_depth(outputs: Sequence[Tensor], p_d: Tensor, depths: Sequence[int]) -> Tensor:
    """Depth choice: the weighted sum of the outputs after each candidate depth (``outputs[i]`` = after ``i+1`` layers)."""
    return sum(p_d[i] * outputs[d - 1] for i, d in enumerate(depths))  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------------------------
# Classic (non-entangled) mixed operations: one weight set and one forward pass per candidate
# --------------------------------------------------------------------------------------------------------------------


class ClassicConvBlock(nn.Module):
    """DARTS-style mixed op: a separate ConvBlock per (channels, kernel) candidate, outputs zero-padded to the widest
    and summed with weights p_c * p_k. Every candidate reads the mixed input as it is (``in_mask`` is accepted only so
    that both kinds share one call signature)."""

    def __init__(self, in_channels: int, channels: Sequence[int], kernels: Sequence[int]) -> None:
        super().__init__()
        self.channels, self.kernels = _check_choices("channels", channels), _check_choices("kernels", kernels)
        self.max_c = max(self.channels)
        self.cands = nn.ModuleList(ConvBlock(in_channels, c, k, track_running_stats=False)
                                   for c, k in itertools.product(self.channels, self.kernels))

    def forward(self, x: Tensor, p_c: Tensor, p_k: Tensor, in_mask: Tensor | None = None) -> Tensor:
        pj = torch.outer(p_c, p_k).flatten()
        return sum(pj[j] * pad_last(op(x), self.max_c, dim=1) for j, op in enumerate(self.cands))  # type: ignore[return-value]

    def extract(self, in_c: int, c: int, k: int) -> ConvBlock:
        src = self.cands[self.channels.index(c) * len(self.kernels) + self.kernels.index(k)]
        block = ConvBlock(in_c, c, k)
        with torch.no_grad():
            block.conv.weight.copy_(src.conv.weight[:, :in_c])
            block.bn.weight.copy_(src.bn.weight)
            block.bn.bias.copy_(src.bn.bias)
        return block


class ClassicLayerNorm(nn.Module):
    """A separate LayerNorm per width choice; outputs zero-padded and weighted."""

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        self.widths = _check_choices("widths", widths)
        self.full = max(self.widths)
        self.cands = nn.ModuleList(nn.LayerNorm(e) for e in self.widths)

    def forward(self, x: Tensor, p_e: Tensor) -> Tensor:
        return sum(p_e[i] * pad_last(ln(x[..., :e]), self.full) for i, (e, ln) in enumerate(zip(self.widths, self.cands)))  # type: ignore[return-value]

    def extract(self, e: int) -> nn.LayerNorm:
        return _clone(self.cands[self.widths.index(e)])


class ClassicAttention(nn.Module):
    """A separate Attention per (width, heads) candidate, each on the first ``e`` features; weights p_e * p_h."""

    def __init__(self, widths: Sequence[int], heads: Sequence[int], head_dim: int, causal: bool = False) -> None:
        super().__init__()
        self.widths, self.heads = _check_choices("widths", widths), _check_choices("heads", heads)
        self.full = max(self.widths)
        self.cands = nn.ModuleList(Attention(e, h, head_dim, causal) for e, h in itertools.product(self.widths, self.heads))

    def forward(self, x: Tensor, p_e: Tensor, p_h: Tensor) -> Tensor:
        pj = torch.outer(p_e, p_h).flatten()
        pairs = itertools.product(self.widths, self.heads)
        return sum(pj[j] * pad_last(op(x[..., :e]), self.full) for j, ((e, _), op) in enumerate(zip(pairs, self.cands)))  # type: ignore[return-value]

    def extract(self, e: int, h: int) -> Attention:
        return _clone(self.cands[self.widths.index(e) * len(self.heads) + self.heads.index(h)])


class ClassicMLP(nn.Module):
    """A separate MLP per (ratio, width) candidate; weights p_r * p_e."""

    def __init__(self, widths: Sequence[int], ratios: Sequence[float]) -> None:
        super().__init__()
        self.widths, self.ratios = _check_choices("widths", widths), _check_choices("mlp ratios", ratios)
        self.full = max(self.widths)
        self.cands = nn.ModuleList(MLP(e, hidden_width(r, e)) for r, e in itertools.product(self.ratios, self.widths))

    def forward(self, x: Tensor, p_e: Tensor, p_r: Tensor) -> Tensor:
        pj = torch.outer(p_r, p_e).flatten()
        pairs = itertools.product(self.ratios, self.widths)
        return sum(pj[j] * pad_last(op(x[..., :e]), self.full) for j, ((_, e), op) in enumerate(zip(pairs, self.cands)))  # type: ignore[return-value]

    def extract(self, e: int, ratio: float) -> MLP:
        return _clone(self.cands[self.ratios.index(ratio) * len(self.widths) + self.widths.index(e)])


class ClassicLinear(nn.Module):
    """A separate linear layer per input-width choice (e.g. a classifier head after a width choice)."""

    def __init__(self, widths: Sequence[int], out_features: int) -> None:
        super().__init__()
        self.widths = _check_choices("widths", widths)
        self.cands = nn.ModuleList(nn.Linear(e, out_features) for e in self.widths)

    def forward(self, x: Tensor, p_in: Tensor) -> Tensor:
        return sum(p_in[i] * op(x[..., :e]) for i, (e, op) in enumerate(zip(self.widths, self.cands)))  # type: ignore[return-value]

    def extract(self, e: int) -> nn.Linear:
        return _clone(self.cands[self.widths.index(e)])


def _clone(module: nn.Module) -> nn.Module:
    return copy.deepcopy(module)
