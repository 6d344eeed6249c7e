"""Exactness of the weight-entangled (and classic) mixed ops: one-hot architecture weights reproduce the chosen
standalone op, the mask form equals the weighted sum of padded slices, gradients reach the architecture weights, and
derived networks have exactly the chosen shapes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from archgym.search_spaces import entangled as E  # noqa: E402
from archgym.search_spaces import tangle_spaces as ts  # noqa: E402

ATOL = 1e-5


def onehot(i: int, n: int) -> torch.Tensor:
    v = torch.zeros(n)
    v[i] = 1.0
    return v


def padded_input(shape: tuple, width: int, dim: int) -> torch.Tensor:
    x = torch.randn(*shape)
    index = [slice(None)] * x.dim()
    index[dim] = slice(width, None)
    x[tuple(index)] = 0.0
    return x


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def test_conv_block_onehot_equals_standalone_for_every_channel_kernel_choice():
    channels, kernels, in_choices = (4, 6, 8), (3, 5, 7), (2, 3)
    op = E.EntangledConvBlock(max(in_choices), channels, kernels)
    with torch.no_grad():
        op.bn.weight.uniform_(0.5, 1.5)
        op.bn.bias.uniform_(-0.5, 0.5)
    for in_c in in_choices:
        x = padded_input((5, 3, 9, 9), in_c, dim=1)
        in_mask = (torch.arange(3) < in_c).float()
        for (ci, c), (ki, k) in itertools.product(enumerate(channels), enumerate(kernels)):
            y = op(x, onehot(ci, 3), onehot(ki, 3), in_mask)
            ref = op.extract(in_c, c, k)(x[:, :in_c])
            assert ref.shape == (5, c, 9, 9)
            assert torch.allclose(y[:, :c], ref, atol=ATOL)
            assert torch.all(y[:, c:] == 0)


def test_conv_mixed_weight_is_outer_product_sum_of_padded_slices():
    channels, kernels = (2, 4), (1, 3, 5)
    op = E.EntangledConvBlock(3, channels, kernels)
    p_c, p_k = torch.tensor([0.3, 0.7]), torch.tensor([0.2, 0.5, 0.3])
    literal = torch.zeros_like(op.weight)
    for (ci, c), (ki, k) in itertools.product(enumerate(channels), enumerate(kernels)):
        s = E.centre_slice(k, 5)
        literal[:c, :, s, s] += p_c[ci] * p_k[ki] * op.weight[:c, :, s, s]
    mask_form = op.weight * E.mix(p_c, op.c_masks)[:, None, None, None] * E.mix(p_k, op.k_masks)[None, None]
    assert torch.allclose(mask_form, literal, atol=1e-6)


def test_classic_conv_block_onehot_equals_its_candidate():
    op = E.ClassicConvBlock(3, (4, 8), (3, 5))
    x = padded_input((4, 3, 6, 6), 2, dim=1)
    for (ci, c), (ki, k) in itertools.product(enumerate((4, 8)), enumerate((3, 5))):
        y = op(x, onehot(ci, 2), onehot(ki, 2))
        assert torch.allclose(y[:, :c], op.extract(2, c, k)(x[:, :2]), atol=ATOL)
        assert torch.all(y[:, c:] == 0)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_onehot_equals_standalone_for_every_heads_width_choice(causal):
    widths, heads = (8, 12, 16), (1, 2, 3)
    ent = E.EntangledAttention(widths, heads, head_dim=4, causal=causal)
    cls = E.ClassicAttention(widths, heads, head_dim=4, causal=causal)
    for (ei, e), (hi, h) in itertools.product(enumerate(widths), enumerate(heads)):
        x = padded_input((3, 5, 16), e, dim=2)
        for op in (ent, cls):
            y = op(x, onehot(ei, 3), onehot(hi, 3))
            ref = op.extract(e, h)
            assert ref.qkv.weight.shape == (3 * h * 4, e) and ref.proj.weight.shape == (e, h * 4)
            assert torch.allclose(y[..., :e], ref(x[..., :e]), atol=ATOL)
            assert torch.all(y[..., e:] == 0)


def test_mlp_onehot_equals_standalone_and_joint_mask_is_sum_of_slices():
    widths, ratios = (4, 6, 8), (1, 2.5, 4)
    ent, cls = E.EntangledMLP(widths, ratios), E.ClassicMLP(widths, ratios)
    for (ei, e), (ri, r) in itertools.product(enumerate(widths), enumerate(ratios)):
        x = padded_input((3, 5, 8), e, dim=2)
        for op in (ent, cls):
            y = op(x, onehot(ei, 3), onehot(ri, 3))
            ref = op.extract(e, r)
            assert ref.fc1.weight.shape == (E.hidden_width(r, e), e)
            assert torch.allclose(y[..., :e], ref(x[..., :e]), atol=ATOL)
            assert torch.all(y[..., e:] == 0)
    p_e, p_r = torch.tensor([0.2, 0.3, 0.5]), torch.tensor([0.6, 0.1, 0.3])
    literal = torch.zeros_like(ent.fc1.lin.weight)
    for (ei, e), (ri, r) in itertools.product(enumerate(widths), enumerate(ratios)):
        n = E.hidden_width(r, e)
        literal[:n, :e] += p_r[ri] * p_e[ei] * ent.fc1.lin.weight[:n, :e]
    pj = torch.outer(p_r, p_e).flatten()
    joint = torch.einsum("j,jh,je->he", pj, ent.row_masks, ent.col_masks)
    assert torch.allclose(ent.fc1.lin.weight * joint, literal, atol=1e-6)


def test_layer_norm_and_linear_onehot():
    widths = (3, 5, 8)
    ent, cls = E.EntangledLayerNorm(widths), E.ClassicLayerNorm(widths)
    with torch.no_grad():
        ent.weight.uniform_(0.5, 1.5)
        ent.bias.uniform_(-1, 1)
    for ei, e in enumerate(widths):
        x = padded_input((2, 4, 8), e, dim=2)
        for op in (ent, cls):
            y = op(x, onehot(ei, 3))
            assert torch.allclose(y[..., :e], op.extract(e)(x[..., :e]), atol=ATOL)
            assert torch.all(y[..., e:] == 0)
    lin = E.EntangledLinear(8, 6)
    x = torch.randn(4, 8)
    out_mask, in_mask = (torch.arange(6) < 4).float(), (torch.arange(8) < 5).float()
    ref = torch.nn.functional.linear(x[:, :5], lin.lin.weight[:4, :5], lin.lin.bias[:4])
    y = lin(x, in_mask=in_mask, out_mask=out_mask)
    assert torch.allclose(y[:, :4], ref, atol=ATOL) and torch.all(y[:, 4:] == 0)


def test_mix_depth_picks_the_output_after_the_chosen_depth():
    outs = [torch.full((2,), float(i)) for i in range(4)]
    assert torch.equal(E.mix_depth(outs, onehot(1, 3), (2, 3, 4)), outs[2])
    mixed = E.mix_depth(outs, torch.tensor([0.5, 0.25, 0.25]), (2, 3, 4))
    assert torch.allclose(mixed, torch.full((2,), 0.5 * 1 + 0.25 * 2 + 0.25 * 3))


CASES = [
    (lambda: ts.conv_space(channels=(4, 8), kernels=(3, 5)), ts.Task("image", 1, 8, 10), lambda: torch.randn(6, 1, 8, 8)),
    (lambda: ts.vit_space(embed_dims=(16, 24), depths=(1, 2, 3), heads=(1, 2), mlp_ratios=(2, 3), head_dim=8),
     ts.Task("image", 1, 8, 10), lambda: torch.randn(6, 1, 8, 8)),
    (lambda: ts.gpt_space(embed_dims=(16, 24), layers=(1, 2), heads=(1, 2), mlp_ratios=(2, 3), head_dim=8, block_size=12),
     ts.Task("text", vocab_size=11, block_size=12), lambda: torch.randint(0, 11, (6, 12))),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("entangled", [True, False])
def test_supernet_onehot_equals_derived_network(case, entangled):
    make_space, task, make_x = CASES[case]
    space, x = make_space(), make_x()
    net = ts.build_supernet(space, task, entangled)
    for d in ts.sample_designs(space, 6, seed=case):
        with torch.no_grad():
            y = net(x, ts.onehot_probs(space, d))
            ref = net.derive(d)(x)
        assert torch.allclose(y, ref, atol=1e-4), (d, float((y - ref).abs().max()))


@pytest.mark.parametrize("case", range(len(CASES)))
def test_gradients_reach_every_architecture_weight(case):
    make_space, task, make_x = CASES[case]
    space, x = make_space(), make_x()
    net = ts.build_supernet(space, task, entangled=True)
    alpha = {n: torch.randn(len(v), requires_grad=True) for n, v in ts.choices(space).items()}
    out = net(x, {n: a.softmax(0) for n, a in alpha.items()})
    target = torch.randint(0, out.shape[-1], out.shape[:-1])
    torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), target.reshape(-1)).backward()
    for n, a in alpha.items():
        assert a.grad is not None and float(a.grad.abs().sum()) > 0, n


def test_derived_networks_have_exactly_the_chosen_shapes():
    space = ts.conv_space(channels=(4, 8, 12), kernels=(3, 5, 7))
    task = ts.Task("image", 3, 8, 10)
    design = {"c0": 8, "k0": 7, "c1": 4, "k1": 3, "c2": 12, "k2": 5, "c3": 4, "k3": 5, "c4": 8, "k4": 3}
    for net in (ts.build_network(space, design, task), ts.build_supernet(space, task).derive(design)):
        shapes = [tuple(b.conv.weight.shape) for b in net.blocks]
        assert shapes == [(8, 3, 7, 7), (4, 8, 3, 3), (12, 4, 5, 5), (4, 12, 5, 5), (8, 4, 3, 3)]
        assert tuple(net.head.weight.shape) == (10, 8)
    vspace = ts.vit_space(embed_dims=(16, 24), depths=(1, 2, 3), heads=(1, 2), mlp_ratios=(2, 3), head_dim=8)
    vd = {"embed_dim": 24, "depth": 2, "layer0_heads": 2, "layer0_mlp_ratio": 3, "layer1_heads": 1, "layer1_mlp_ratio": 2}
    vtask = ts.Task("image", 1, 8, 10)
    for net in (ts.build_network(vspace, vd, vtask), ts.build_supernet(vspace, vtask, entangled=False).derive(vd)):
        assert len(net.blocks) == 2 and tuple(net.pos.shape) == (16, 24)
        assert [tuple(b.attn.qkv.weight.shape) for b in net.blocks] == [(48, 24), (24, 24)]
        assert [tuple(b.mlp.fc1.weight.shape) for b in net.blocks] == [(72, 24), (48, 24)]
    # the derived network is independent of the supernet (a copy, not a view)
    sup = ts.build_supernet(space, task)
    derived = sup.derive(design)
    with torch.no_grad():
        derived.blocks[0].conv.weight.add_(1.0)
    assert not torch.allclose(sup.blocks[0].weight[:8, :3], derived.blocks[0].conv.weight)


def test_entangled_supernet_is_smaller_than_classic():
    space, task = ts.conv_space(), ts.Task("image", 1, 8, 10)
    ent, cls = ts.build_supernet(space, task, True), ts.build_supernet(space, task, False)
    biggest = {n: max(v) for n, v in ts.choices(space).items()}
    assert ts.count_params(ent) == ts.count_params(ts.build_network(space, biggest, task))
    assert ts.count_params(cls) > 2 * ts.count_params(ent)


def test_bad_choices_are_refused():
    with pytest.raises(ValueError, match="odd"):
        E.EntangledConvBlock(3, (4,), (2, 3))
    with pytest.raises(ValueError, match="channels"):
        E.EntangledConvBlock(3, (), (3,))
    rng = np.random.default_rng(0)
    space = ts.conv_space()
    with pytest.raises(Exception, match="c0"):
        ts.build_network(space, {**space.sample(rng), "c0": 7}, ts.Task("image", 1, 8, 10))
