"""Workloads for the accelerator simulators: a network as a list of convolution and GEMM shapes, taken from a
``torch.nn.Module`` (forward hooks), an ONNX model, a SCALE-Sim topology CSV or a named built-in network, and
converted to what SCALE-Sim (topology rows) and ZigZag (layer dicts) read. Both simulators see the same layers.

Only Conv/Linear/Gemm/MatMul work is kept: pooling, activations and element-wise additions are not mapped onto the
MAC array by either simulator's layer model. Identical layers are merged (``count``) so a simulator runs each shape
once and scales its additive metrics, which gives the same totals as simulating the repeats one by one.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Union

from archgym.errors import ConfigError

# Operand precisions (bits) used for ZigZag: 8-bit weights and activations, 16-bit partial sums (its convention).
PRECISION = {"W": 8, "I": 8, "O": 16, "O_final": 8}


def _pos(owner: str, field_name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"layer {owner!r}: {field_name} must be an integer >= {minimum}, got {value!r}")
    return value


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    v = tuple(int(x) for x in value)
    if len(v) != 2:
        raise ConfigError(f"expected an int or a pair, got {value!r}")
    return v  # type: ignore[return-value]


@dataclass(frozen=True)
class Conv:
    """A 2-D convolution on a ``batch x in_channels x height x width`` input (height/width before padding).

    ``padding`` is an int, a (h, w) pair or (top, bottom, left, right); ``groups`` > 1 is a grouped/depthwise conv.
    ``count`` says how many identical copies of this layer the network holds.
    """

    name: str
    in_channels: int
    out_channels: int
    height: int
    width: int
    kernel: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1
    batch: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "kernel", _pair(self.kernel))
        object.__setattr__(self, "stride", _pair(self.stride))
        pad = self.padding
        if isinstance(pad, int):
            pad = (pad, pad, pad, pad)
        elif len(pad) == 2:
            pad = (pad[0], pad[0], pad[1], pad[1])
        object.__setattr__(self, "padding", tuple(int(p) for p in pad))
        for f in ("in_channels", "out_channels", "height", "width", "groups", "batch", "count"):
            _pos(self.name, f, getattr(self, f))
        for f, v in (("kernel", self.kernel), ("stride", self.stride)):
            for x in v:
                _pos(self.name, f, x)
        for p in self.padding:
            _pos(self.name, "padding", p, minimum=0)
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ConfigError(f"layer {self.name!r}: in_channels {self.in_channels} and out_channels "
                              f"{self.out_channels} must be divisible by groups {self.groups}")
        if self.kernel[0] > self.padded_height or self.kernel[1] > self.padded_width:
            raise ConfigError(f"layer {self.name!r}: kernel {self.kernel} is larger than the padded input "
                              f"{self.padded_height}x{self.padded_width}")

    @property
    def padded_height(self) -> int:
        return self.height + self.padding[0] + self.padding[1]

    @property
    def padded_width(self) -> int:
        return self.width + self.padding[2] + self.padding[3]

    @property
    def out_height(self) -> int:
        return (self.padded_height - self.kernel[0]) // self.stride[0] + 1

    @property
    def out_width(self) -> int:
        return (self.padded_width - self.kernel[1]) // self.stride[1] + 1

    @property
    def macs(self) -> int:
        """Multiply-accumulates of all ``count`` copies."""
        per_out = (self.in_channels // self.groups) * self.kernel[0] * self.kernel[1]
        return self.count * self.batch * self.out_channels * self.out_height * self.out_width * per_out


@dataclass(frozen=True)
class Gemm:
    """A matrix product ``(m x k) @ (k x n)``: a fully-connected layer (m = tokens/batch) or an attention matmul."""

    name: str
    m: int
    n: int
    k: int
    count: int = 1

    def __post_init__(self) -> None:
        for f in ("m", "n", "k", "count"):
            _pos(self.name, f, getattr(self, f))

    @property
    def macs(self) -> int:
        return self.count * self.m * self.n * self.k


Layer = Union[Conv, Gemm]


def _shape_key(layer: Layer) -> Layer:
    return replace(layer, name="", count=1)


@dataclass(frozen=True)
class Workload:
    """A named list of layers; ``unique()`` merges identical shapes for simulators that run each shape once."""

    name: str
    layers: tuple[Layer, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not self.layers:
            raise ConfigError(f"workload {self.name!r} has no convolution or GEMM layer")

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    def __len__(self) -> int:
        return sum(layer.count for layer in self.layers)

    def unique(self) -> list[tuple[Layer, int]]:
        """Distinct layer shapes (named after their first occurrence) with their total counts, in first-seen order."""
        merged: dict[Layer, list[Any]] = {}
        for layer in self.layers:
            key = _shape_key(layer)
            if key in merged:
                merged[key][1] += layer.count
            else:
                merged[key] = [replace(layer, count=1), layer.count]
        return [(lay, n) for lay, n in merged.values()]

    def describe(self) -> str:
        return f"{self.name}: {len(self)} layers ({len(self.unique())} distinct shapes), {self.macs / 1e6:.2f} M MACs"


# --------------------------------------------------------------------------------------------------------------------
# Conversions to the simulators' inputs
# --------------------------------------------------------------------------------------------------------------------


def scalesim_row(layer: Layer) -> tuple[list[Any], int]:
    """One SCALE-Sim topology entry ``[name, ifmap_h, ifmap_w, filt_h, filt_w, channels, filters, stride_h,
    stride_w, N, M]`` for this layer and how many times it runs.

    SCALE-Sim has no padding, groups or batch: the ifmap is given padded, a grouped convolution runs as ``groups``
    convolutions of ``in/groups`` channels (as its own depthwise handling does) and a batch as repeated runs.
    A GEMM is given as SCALE-Sim's own GEMM mode stores it (ifmap m x k, a 1 x k filter over 1 channel, n filters).
    """
    if isinstance(layer, Gemm):
        return [layer.name, layer.m, layer.k, 1, layer.k, 1, layer.n, 1, 1, 1, 1], layer.count
    g = layer.groups
    row = [layer.name, layer.padded_height, layer.padded_width, layer.kernel[0], layer.kernel[1],
           layer.in_channels // g, layer.out_channels // g, layer.stride[0], layer.stride[1], 1, 1]
    return row, layer.count * layer.batch * g


def zigzag_layer(layer: Layer, layer_id: int) -> dict[str, Any]:
    """The ZigZag (3.x) workload entry of one layer (the format of its YAML workloads and ONNX parser)."""
    if isinstance(layer, Gemm):
        return {
            "id": layer_id, "name": layer.name or f"gemm{layer_id}", "operator_type": "Gemm",
            "equation": "O[d][k]+=I[d][c]*W[c][k]", "dimension_relations": [],
            "loop_dims": ["C", "D", "K"], "loop_sizes": [layer.k, layer.m, layer.n],
            "operand_precision": dict(PRECISION),
        }
    g = layer.groups
    dims = ["B", "K", "C", "OY", "OX", "FY", "FX"]
    sizes = [layer.batch, layer.out_channels // g, layer.in_channels // g, layer.out_height, layer.out_width,
             layer.kernel[0], layer.kernel[1]]
    eq = "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]"
    if g > 1:
        dims.insert(1, "G")
        sizes.insert(1, g)
        eq = "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]"
    t, b, left, r = layer.padding
    return {
        "id": layer_id, "name": layer.name or f"conv{layer_id}", "operator_type": "Conv", "equation": eq,
        "dimension_relations": [f"ix={layer.stride[1]}*ox+1*fx", f"iy={layer.stride[0]}*oy+1*fy"],
        "loop_dims": dims, "loop_sizes": sizes, "operand_precision": dict(PRECISION),
        "pr_loop_dims": ["IY", "IX"], "pr_loop_sizes": [layer.height, layer.width], "padding": [[t, b], [left, r]],
    }


# --------------------------------------------------------------------------------------------------------------------
# Sources: torch modules, ONNX models, SCALE-Sim topology CSV
# --------------------------------------------------------------------------------------------------------------------


def from_torch(model: Any, example_input: Any, name: str = "torch") -> Workload:
    """Trace ``model`` on ``example_input`` with forward hooks and return its Conv2d/Conv1d/Linear layers in call order.

    The model runs once in eval mode under ``torch.no_grad`` (its train/eval flag is restored). Matrix products
    written as plain tensor operations (e.g. attention scores in a hand-written block) are not modules, so they are
    not seen; build those as ``Gemm`` layers.
    """
    import torch
    from torch import nn

    layers: list[Layer] = []

    def conv_hook(mod_name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            x = inputs[0]
            if any(d != 1 for d in module.dilation):
                raise ConfigError(f"layer {mod_name!r}: dilated convolutions are not supported by the simulators")
            if isinstance(module, nn.Conv1d):
                batch, c, w = (x.shape if x.dim() == 3 else (1, *x.shape))
                h, kernel, stride = 1, (1, module.kernel_size[0]), (1, module.stride[0])
                pad_w = _torch_padding(module, (w,), output)[0]
                pads: tuple = (0, 0, *pad_w)
            else:
                batch, c, h, w = (x.shape if x.dim() == 4 else (1, *x.shape))
                kernel, stride = _pair(module.kernel_size), _pair(module.stride)
                ph, pw = _torch_padding(module, (h, w), output)
                pads = (*ph, *pw)
            layers.append(Conv(mod_name, int(c), module.out_channels, int(h), int(w), kernel, stride, pads,
                               module.groups, int(batch)))
        return hook

    def linear_hook(mod_name: str) -> Callable[..., None]:
        def hook(module: nn.Module, inputs: tuple, output: Any) -> None:
            x = inputs[0]
            m = int(math.prod(x.shape[:-1])) if x.dim() > 1 else 1
            layers.append(Gemm(mod_name, m, module.out_features, module.in_features))
        return hook

    handles = []
    for mod_name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Conv1d)):
            handles.append(module.register_forward_hook(conv_hook(mod_name)))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook(mod_name)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example_input)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return Workload(name, tuple(layers))


def _torch_padding(module: Any, spatial: tuple[int, ...], output: Any) -> list[tuple[int, int]]:
    """Per-dimension (before, after) padding of a torch conv, resolving 'same'/'valid' from the output size."""
    pad = module.padding
    if isinstance(pad, str):
        out_sizes = output.shape[-len(spatial):]
        res = []
        for i, n in enumerate(spatial):
            k, s = module.kernel_size[i], module.stride[i]
            total = max(0, (int(out_sizes[i]) - 1) * s + k - n)
            res.append((total // 2, total - total // 2))
        return res
    pad = tuple(pad) if not isinstance(pad, int) else (pad,) * len(spatial)
    return [(p, p) for p in pad]


def from_onnx(model: Any, name: str | None = None) -> Workload:
    """Conv, Gemm and MatMul nodes of an ONNX model (a path or a ``ModelProto``) with shapes from its value info
    (shape inference fills them in when absent). External weight data is never loaded: only shapes are read."""
    import onnx

    if isinstance(model, (str, Path)):
        path = Path(model)
        if not path.is_file():
            raise ConfigError(f"ONNX file {str(path)!r} does not exist")
        name = name or path.stem
        model = onnx.load(str(path), load_external_data=False)
    name = name or (model.graph.name or "onnx")
    shapes: dict[str, list[int]] = {t.name: list(t.dims) for t in model.graph.initializer}

    def collect(m: Any) -> None:
        for vi in [*m.graph.input, *m.graph.value_info, *m.graph.output]:
            dims = vi.type.tensor_type.shape.dim
            shapes.setdefault(vi.name, [d.dim_value if d.dim_value > 0 else 1 for d in dims])

    collect(model)
    if any(o not in shapes for n in model.graph.node if n.op_type in ("Conv", "Gemm", "MatMul") for o in n.input[:2]):
        collect(onnx.shape_inference.infer_shapes(model))
    layers: list[Layer] = []
    for i, node in enumerate(model.graph.node):
        if node.op_type not in ("Conv", "Gemm", "MatMul"):
            continue
        lname = node.name or f"{node.op_type.lower()}{i}"
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        try:
            a_shape, b_shape = shapes[node.input[0]], shapes[node.input[1]]
        except KeyError as exc:
            raise ConfigError(f"ONNX node {lname!r}: the shape of input {exc.args[0]!r} is unknown") from None
        if node.op_type == "Conv":
            if any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise ConfigError(f"ONNX node {lname!r}: dilated convolutions are not supported by the simulators")
            if len(a_shape) != 4:
                raise ConfigError(f"ONNX node {lname!r}: only 2-D convolutions are supported (input {a_shape})")
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            kernel = tuple(attrs.get("kernel_shape", b_shape[2:4]))
            layers.append(Conv(lname, a_shape[1], b_shape[0], a_shape[2], a_shape[3], kernel,
                               tuple(attrs.get("strides", [1, 1])), (pads[0], pads[2], pads[1], pads[3]),
                               int(attrs.get("group", 1)), max(1, a_shape[0])))
        elif node.op_type == "Gemm":
            m, k = (a_shape[1], a_shape[0]) if attrs.get("transA", 0) else (a_shape[0], a_shape[1])
            n = b_shape[0] if attrs.get("transB", 0) else b_shape[1]
            layers.append(Gemm(lname, m, n, k))
        else:
            lead = a_shape[:-2]
            m = a_shape[-2] if len(a_shape) >= 2 else 1
            layers.append(Gemm(lname, m, b_shape[-1], a_shape[-1], count=max(1, math.prod(lead))))
    return Workload(name, tuple(layers))


def from_scalesim_csv(path: str | Path, name: str | None = None) -> Workload:
    """A SCALE-Sim topology file: convolution rows ``name, ifmap h, ifmap w, filter h, filter w, channels,
    filters, stride[, N:M]`` (ifmap sizes already padded) or, when the header names M/N/K, GEMM rows
    ``name, M, N, K``. Rows whose name contains 'DP' are depthwise, as in SCALE-Sim."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"topology file {str(path)!r} does not exist")
    with path.open(newline="") as f:
        rows = [[c.strip() for c in r] for r in csv.reader(f) if any(c.strip() for c in r)]
    if not rows:
        raise ConfigError(f"topology file {str(path)!r} is empty")
    header = [h.lower() for h in rows[0] if h]
    gemm = len(header) >= 4 and header[1:4] == ["m", "n", "k"]
    layers: list[Layer] = []
    for lineno, row in enumerate(rows[1:], start=2):
        cells = [c for c in row if c != ""]
        try:
            if gemm:
                layers.append(Gemm(cells[0], int(cells[1]), int(cells[2]), int(cells[3])))
                continue
            lname = cells[0]
            h, w, fh, fw, ch, nf, s = (int(x) for x in cells[1:8])
            if "DP" in lname:
                layers.append(Conv(lname, ch, ch * nf, h, w, (fh, fw), (s, s), 0, groups=ch))
            else:
                layers.append(Conv(lname, ch, nf, h, w, (fh, fw), (s, s), 0))
        except (ValueError, IndexError):
            want = "name, M, N, K" if gemm else "name, ifmap h, ifmap w, filter h, filter w, channels, filters, stride"
            raise ConfigError(f"{path.name} line {lineno}: expected integers in '{want}', got {row}") from None
    return Workload(name or path.stem, tuple(layers))


# --------------------------------------------------------------------------------------------------------------------
# Built-in networks
# --------------------------------------------------------------------------------------------------------------------


def tiny_cnn() -> Workload:
    """Two small convolutions, global average pooling and a classifier on an 8x8 RGB input (about 24 K MACs):
    for tests and quick searches."""
    return Workload("tiny_cnn", (
        Conv("conv1", 3, 8, 8, 8, 3, 1, 1),
        Conv("conv2", 8, 16, 8, 8, 3, 2, 1),
        Gemm("fc", 1, 10, 16),
    ))


def small_cnn() -> Workload:
    """A 4-layer CIFAR-style CNN on a 32x32 RGB input (about 2.7 M MACs)."""
    return Workload("small_cnn", (
        Conv("conv1", 3, 16, 32, 32, 3, 1, 1),
        Conv("conv2", 16, 32, 32, 32, 3, 2, 1),
        Conv("conv3", 32, 64, 16, 16, 3, 2, 1),
        Gemm("fc", 1, 10, 64 * 8 * 8),
    ))


def resnet18(image: int = 224, num_classes: int = 1000) -> Workload:
    """ResNet-18's convolutions (with the 1x1 downsampling shortcuts) and classifier for a square RGB image."""
    layers: list[Layer] = [Conv("conv1", 3, 64, image, image, 7, 2, 3)]
    size = (image + 6 - 7) // 2 + 1
    size = (size + 2 - 3) // 2 + 1  # 3x3/2 max-pool
    channels = 64
    for stage, width in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if stage > 1 and block == 0 else 1
            prefix = f"layer{stage}.{block}"
            layers.append(Conv(f"{prefix}.conv1", channels, width, size, size, 3, stride, 1))
            out = (size + 2 - 3) // stride + 1
            layers.append(Conv(f"{prefix}.conv2", width, width, out, out, 3, 1, 1))
            if stride != 1 or channels != width:
                layers.append(Conv(f"{prefix}.downsample", channels, width, size, size, 1, stride, 0))
            channels, size = width, out
    layers.append(Gemm("fc", 1, num_classes, channels))
    return Workload("resnet18", tuple(layers))


def transformer_block(seq: int = 128, d_model: int = 768, heads: int = 12, d_ff: int = 3072,
                      name: str = "transformer_block") -> Workload:
    """The matrix products of one encoder block (BERT-base sizes by default): Q/K/V and output projections, the
    per-head attention scores and context, and the two feed-forward layers."""
    if d_model % heads:
        raise ConfigError(f"transformer_block: d_model {d_model} must be divisible by heads {heads}")
    dh = d_model // heads
    return Workload(name, (
        Gemm("qkv_proj", seq, 3 * d_model, d_model),
        Gemm("attn_scores", seq, seq, dh, count=heads),
        Gemm("attn_context", seq, dh, seq, count=heads),
        Gemm("out_proj", seq, d_model, d_model),
        Gemm("ffn1", seq, d_ff, d_model),
        Gemm("ffn2", seq, d_model, d_ff),
    ))


def tiny_transformer() -> Workload:
    """A transformer block small enough for cycle-level simulation in about a second (seq 16, width 32, 2 heads)."""
    return transformer_block(seq=16, d_model=32, heads=2, d_ff=64, name="tiny_transformer")


def zigzag_onnx(model: str) -> Workload:
    """One of the ONNX networks shipped inside the zigzag-dse package (alexnet, mobilenetv2, resnet18)."""
    try:
        import zigzag
    except ModuleNotFoundError:
        raise ConfigError("the ONNX workloads ship with ZigZag: pip install 'archgym[zigzag]'") from None
    path = Path(zigzag.__file__).parent / "inputs" / "workload" / f"{model}.onnx"
    return from_onnx(path, name=f"{model}_onnx")


BUILTIN: dict[str, Callable[[], Workload]] = {
    "tiny_cnn": tiny_cnn,
    "small_cnn": small_cnn,
    "resnet18": resnet18,
    "transformer_block": transformer_block,
    "tiny_transformer": tiny_transformer,
    "alexnet_onnx": lambda: zigzag_onnx("alexnet"),
    "mobilenetv2_onnx": lambda: zigzag_onnx("mobilenetv2"),
    "resnet18_onnx": lambda: zigzag_onnx("resnet18"),
}


def get_workload(spec: str | Workload | Iterable[Layer], name: str = "custom") -> Workload:
    """Resolve a workload argument: a built-in name, a ``.csv`` (SCALE-Sim topology) or ``.onnx`` path, a
    ``Workload`` or a list of layers. Named layer prefixes ``name:first,second`` select layers by name."""
    if isinstance(spec, Workload):
        return spec
    if isinstance(spec, str):
        base, _, select = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
        if base in BUILTIN:
            wl = BUILTIN[base]()
        elif base.endswith(".csv"):
            wl = from_scalesim_csv(base)
        elif base.endswith(".onnx"):
            wl = from_onnx(base)
        else:
            raise ConfigError(f"workload {spec!r} is not known; built-in: {', '.join(BUILTIN)}; "
                              "or a SCALE-Sim topology .csv / an .onnx file path")
        if select:
            wanted = [s.strip() for s in select.split(",") if s.strip()]
            by_name = {layer.name: layer for layer in wl.layers}
            missing = [w for w in wanted if w not in by_name]
            if missing:
                raise ConfigError(f"workload {base!r} has no layer {missing[0]!r}; layers: {', '.join(by_name)}")
            wl = Workload(f"{wl.name}:{','.join(wanted)}", tuple(by_name[w] for w in wanted))
        return wl
    layers = tuple(spec)
    for layer in layers:
        if not isinstance(layer, (Conv, Gemm)):
            raise ConfigError(f"a workload holds Conv and Gemm layers, got {type(layer).__name__}")
    return Workload(name, layers)
