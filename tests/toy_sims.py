"""Small simulators for the core tests: a smooth synthetic problem with a known optimum, and misbehaving ones."""

from __future__ import annotations

import os
import time
from pathlib import Path

from archgym.simulator import Metric, Simulator
from archgym.space import Categorical, DesignSpace, Float, Integer, Ordinal


def toy_space() -> DesignSpace:
    return DesignSpace(
        [Ordinal("width", (4, 8, 16, 32, 64)), Integer("depth", 1, 6), Categorical("act", ("relu", "tanh", "gelu")),
         Float("lr", 1e-4, 1e-1, log=True)],
        name="toy",
    )


class ToySim(Simulator):
    """score peaks at width=32, depth=4, act=gelu, lr=1e-2; cost grows with width*depth."""

    name = "toy"
    metrics = (Metric("score", "", "max"), Metric("cost", "ops", "min", scale=100.0))

    def __init__(self) -> None:
        self.space = toy_space()

    def evaluate(self, design, fidelity=None, workdir=None):
        import math

        s = -abs(math.log2(design["width"]) - 5) - abs(design["depth"] - 4) - (0 if design["act"] == "gelu" else 1)
        s -= abs(math.log10(design["lr"]) + 2)
        return {"score": s, "cost": design["width"] * design["depth"]}


class BadSim(ToySim):
    """Crashes (exception), hard-crashes (os._exit), hangs or writes files depending on the design's act."""

    name = "bad"
    isolation = "process"
    uses_workdir = True

    def evaluate(self, design, fidelity=None, workdir=None):
        if design["act"] == "relu":
            raise RuntimeError("simulator rejected width %d" % design["width"])
        if design["act"] == "tanh" and design["depth"] == 1:
            os._exit(3)
        if design["act"] == "tanh":
            time.sleep(60)
        (Path(workdir) / "scratch.txt").write_text(str(os.getpid()))
        return {**super().evaluate(design), "cost": float(len(list(Path(workdir).iterdir())))}
