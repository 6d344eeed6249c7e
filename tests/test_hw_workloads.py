"""Workloads: built-in networks, torch forward hooks, ONNX, SCALE-Sim topology CSV, merging and conversions."""

from __future__ import annotations

import pytest

from archgym.errors import ConfigError
from archgym.simulators.workloads import (
    Conv, Gemm, Workload, from_scalesim_csv, get_workload, resnet18, scalesim_row, transformer_block, zigzag_layer,
)


def test_resnet18_has_the_known_layer_count_and_macs():
    wl = resnet18()
    convs = [layer for layer in wl.layers if isinstance(layer, Conv)]
    assert len(convs) == 20 and len([c for c in convs if c.kernel == (1, 1)]) == 3
    assert wl.macs == 1_814_073_344  # 1.81 GMACs, the figure usually quoted for ResNet-18 at 224x224
    assert convs[-1].out_height == 7 and wl.layers[-1] == Gemm("fc", 1, 1000, 512)


def test_onnx_resnet18_from_zigzag_equals_the_builtin_shapes():
    pytest.importorskip("zigzag")
    onnx_wl = get_workload("resnet18_onnx")
    built = resnet18()
    assert onnx_wl.macs == built.macs
    shapes = lambda w: sorted((type(lay).__name__, lay.macs, n) for lay, n in w.unique())  # noqa: E731
    assert shapes(onnx_wl) == shapes(built)
    mobilenet = get_workload("mobilenetv2_onnx")
    assert any(isinstance(lay, Conv) and lay.groups > 1 for lay in mobilenet.layers)


def test_torch_hooks_trace_convs_and_linears():
    torch = pytest.importorskip("torch")
    from torch import nn

    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding="same", groups=8), nn.Conv2d(8, 16, 1),
        nn.Flatten(), nn.Linear(16 * 8 * 8, 10),
    )
    model.train()
    wl = get_workload(_trace(model, torch.zeros(2, 3, 16, 16)))
    assert model.training
    c1, dw, pw, fc = wl.layers
    assert (c1.batch, c1.height, c1.stride, c1.out_height, c1.padding) == (2, 16, (2, 2), 8, (1, 1, 1, 1))
    assert dw.groups == 8 and dw.out_height == 8 and pw.kernel == (1, 1)
    assert fc == Gemm("5", 2, 10, 1024)
    expected = 2 * (8 * 8 * 8 * 27 + 8 * 8 * 8 * 9 + 8 * 8 * 16 * 8) + 2 * 10 * 1024
    assert wl.macs == expected


def _trace(model, x):
    from archgym.simulators.workloads import from_torch

    return from_torch(model, x, name="toy")


def test_dilated_convs_are_refused_clearly():
    torch = pytest.importorskip("torch")
    from torch import nn

    with pytest.raises(ConfigError, match="dilated"):
        _trace(nn.Conv2d(3, 4, 3, dilation=2), torch.zeros(1, 3, 9, 9))


def test_scalesim_csv_conv_gemm_and_depthwise(tmp_path):
    conv = tmp_path / "net.csv"
    conv.write_text("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
                    "Conv1, 10, 10, 3, 3, 4, 8, 1,\nDP_conv, 8, 8, 3, 3, 8, 1, 1,\n")
    wl = from_scalesim_csv(conv)
    c, dp = wl.layers
    assert scalesim_row(c) == (["Conv1", 10, 10, 3, 3, 4, 8, 1, 1, 1, 1], 1)
    assert dp.groups == 8 and scalesim_row(dp) == (["DP_conv", 8, 8, 3, 3, 1, 1, 1, 1, 1, 1], 8)
    gemm = tmp_path / "mnk.csv"
    gemm.write_text("Layer, M, N, K,\nqk, 16, 16, 8,\n")
    (g,) = from_scalesim_csv(gemm).layers
    assert g == Gemm("qk", 16, 16, 8) and scalesim_row(g) == (["qk", 16, 8, 1, 8, 1, 16, 1, 1, 1, 1], 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("Layer name, a, b,\nx, 1, two,\n")
    with pytest.raises(ConfigError, match="line 2"):
        from_scalesim_csv(bad)


def test_unique_merges_repeats_and_zigzag_entries():
    wl = transformer_block(seq=8, d_model=16, heads=2, d_ff=32)
    assert len(wl) == 8 and len(wl.unique()) == 5  # with seq == head width, scores and context share a shape
    merged = dict((lay.name, n) for lay, n in wl.unique())
    assert merged["attn_scores"] == 4 and "attn_context" not in merged
    e = zigzag_layer(Conv("dw", 8, 8, 6, 6, 3, 1, 1, groups=8), 3)
    assert e["loop_dims"][:3] == ["B", "G", "K"] and e["loop_sizes"][:3] == [1, 8, 1] and "[g]" in e["equation"]


def test_bad_layers_and_names_give_clear_errors():
    with pytest.raises(ConfigError, match="divisible by groups"):
        Conv("x", 6, 4, 8, 8, groups=4)
    with pytest.raises(ConfigError, match="kernel"):
        Conv("x", 3, 4, 2, 2, 5)
    with pytest.raises(ConfigError, match="m must be"):
        Gemm("g", 0, 1, 1)
    with pytest.raises(ConfigError, match="built-in"):
        get_workload("vgg99")
    with pytest.raises(ConfigError, match="no layer 'conv9'"):
        get_workload("tiny_cnn:conv9")
    with pytest.raises(ConfigError, match="no convolution"):
        Workload("empty", ())
    assert [lay.name for lay in get_workload("tiny_cnn:conv2,fc").layers] == ["conv2", "fc"]
