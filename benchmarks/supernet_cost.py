"""Cost of one supernet training step, weight-entangled (TangleNAS) vs classic (separate weights per candidate), at
the same batch, for the conv, ViT and GPT spaces, measured in one run.

Memory: on a GPU, ``torch.cuda.max_memory_allocated`` over the step. On the CPU (no allocator statistics), the tensor
memory the step needs: parameters + gradients + AdamW state + every tensor autograd saves for the backward pass
(counted once per storage through ``saved_tensors_hooks``; storages of parameters excluded); as a cross-check that
also sees temporaries and allocator overhead, the growth of the peak resident set size over three steps, each
supernet in a fresh process. Time: median wall time of
forward + backward + optimiser step, the two supernets measured alternately so that load on a shared machine hits both.
Targets (issue 8): entangled <= 0.5x memory and <= 0.5x step time on the conv space, less of both on the others.

    python benchmarks/supernet_cost.py            # default sizes
    python benchmarks/supernet_cost.py --quick    # smoke run
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

import torch

from archgym.search_spaces import tangle_spaces as ts
from archgym.simulators.standalone_train import loss_fn, pick_device, torch_seed
from archgym.simulators.tangle_data import load_data, shared_shakespeare, text_batch


def make_case(family: str, batch: int, device: torch.device):
    """(space, task, input batch, targets) for one family on its benchmark data."""
    if family == "gpt":
        path = shared_shakespeare()
        space = ts.gpt_space(data={"dataset": "text", **({"text_path": str(path)} if path else {})})
        data = load_data(ts.tangle_spec(space)["data"])
        task = ts.make_task(space, data)
        x, y = text_batch(data.train, torch.arange(batch).numpy() * 997, task.block_size)
    else:
        space = ts.conv_space() if family == "conv" else ts.vit_space()
        data = load_data(ts.tangle_spec(space)["data"])
        task = ts.make_task(space, data)
        x, y = data.x_train[:batch], data.y_train[:batch]
    return space, task, x.to(device), y.to(device)


class Step:
    """One DARTS-style weight step of a supernet with softmax architecture weights (the mixed forward pass)."""

    def __init__(self, space, task, entangled: bool, device: torch.device) -> None:
        with torch_seed(0, device):
            self.net = ts.build_supernet(space, task, entangled).to(device)
            self.alpha = {n: torch.randn(len(v), device=device) for n, v in ts.choices(space).items()}
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=1e-3)
        self.device = device

    def __call__(self, x, y, saved: dict | None = None) -> None:
        probs = {n: a.softmax(0) for n, a in self.alpha.items()}
        if saved is None:
            loss = loss_fn(self.net(x, probs), y)
        else:
            def pack(t: torch.Tensor) -> torch.Tensor:
                st = t.untyped_storage()
                saved[st.data_ptr()] = st.nbytes()
                return t

            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                loss = loss_fn(self.net(x, probs), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def memory_bytes(self, x, y) -> float:
        """Peak bytes of one step (see the module docstring for how, per device)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self(x, y)
            return float(torch.cuda.max_memory_allocated(self.device))
        saved: dict[int, int] = {}
        self(x, y, saved)
        params = list(self.net.parameters())
        owned = {p.untyped_storage().data_ptr() for p in params}
        activations = sum(n for ptr, n in saved.items() if ptr not in owned)
        p_bytes = sum(p.numel() * p.element_size() for p in params)
        state = sum(t.numel() * t.element_size() for s in self.opt.state.values() for t in s.values()
                    if torch.is_tensor(t))
        return float(p_bytes * 2 + state + activations)


def measure(family: str, batch: int, steps: int, device: torch.device) -> dict[str, dict[str, float]]:
    space, task, x, y = make_case(family, batch, device)
    runs = {"entangled": Step(space, task, True, device), "classic": Step(space, task, False, device)}
    out = {k: {"params": float(ts.count_params(r.net)), "memory": r.memory_bytes(x, y)} for k, r in runs.items()}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in runs.values():  # warm-up
        r(x, y)
    for _ in range(steps):
        for k, r in runs.items():
            t0 = time.perf_counter()
            r(x, y)
            times[k].append(time.perf_counter() - t0)
    for k in runs:
        out[k]["step_ms"] = 1000 * statistics.median(times[k])
    return out


def rss_growth_mb(family: str, kind: str, batch: int) -> float:
    """Peak-RSS growth (MB) over three steps of one supernet, measured in a fresh process (CPU cross-check; 0 when
    the steps stay below the peak the process reached while loading, as with small batches)."""
    out = subprocess.run([sys.executable, __file__, "--rss-child", family, kind, str(batch)], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _peak_rss_kb() -> float:
    """This process's peak resident set size in KiB. Linux: VmHWM, which starts afresh at exec (``ru_maxrss`` does
    not: it keeps the parent's peak across exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _rss_child(family: str, kind: str, batch: int) -> None:
    device = torch.device("cpu")
    space, task, x, y = make_case(family, batch, device)
    step = Step(space, task, kind == "entangled", device)
    before = _peak_rss_kb()
    for _ in range(3):
        step(x, y)
    print((_peak_rss_kb() - before) / 1024)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--rss-child":
        _rss_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spaces", default="conv,vit,gpt", help="comma-separated: conv, vit, gpt")
    ap.add_argument("--batch", type=int, default=64, help="batch size (images); the LM uses half of it")
    ap.add_argument("--steps", type=int, default=10, help="timed steps per supernet (median reported)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-rss", action="store_true", help="skip the CPU peak-RSS cross-check (one process per supernet)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 timed steps, batch 32")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.batch, args.no_rss = 3, 32, True
    device = pick_device(args.device)
    mem_kind = "torch.cuda.max_memory_allocated" if device.type == "cuda" else "params+grads+AdamW state+saved activations"
    print(f"device: {device}; memory = {mem_kind}; batch {args.batch} (LM {args.batch // 2}); median of {args.steps} steps")
    rss = device.type == "cpu" and not args.no_rss
    header = f"{'space':6} {'supernet':10} {'params':>10} {'memory MB':>10} {'step ms':>9} {'mem ratio':>10} {'time ratio':>11}"
    if rss:
        header += f" {'RSS MB':>8} {'RSS ratio':>10}"
    print(header)
    print("-" * len(header))
    for family in args.spaces.split(","):
        batch = args.batch // 2 if family == "gpt" else args.batch
        res = measure(family, batch, args.steps, device)
        if rss:
            for kind in res:
                res[kind]["rss"] = rss_growth_mb(family, kind, batch)
        base = res["classic"]
        for kind in ("classic", "entangled"):
            r = res[kind]
            line = (f"{family:6} {kind:10} {int(r['params']):>10,} {r['memory'] / 2**20:>10.2f} {r['step_ms']:>9.1f} "
                    f"{r['memory'] / base['memory']:>10.3f} {r['step_ms'] / base['step_ms']:>11.3f}")
            if rss:
                ratio = f"{r['rss'] / base['rss']:>10.3f}" if base["rss"] > 0 else f"{'n/a':>10}"
                line += f" {r['rss']:>8.1f} {ratio}"
            print(line)
    print("ratios: entangled / classic (same batch, same run); target on conv: <= 0.5 for both")


if __name__ == "__main__":
    main()
