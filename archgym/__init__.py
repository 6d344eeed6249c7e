"""archgym: a gym for neural architecture search and hardware design-space exploration.

Importing archgym registers its environments with Gymnasium (``gymnasium.make("archgym/NASBenchGraph-v0")``);
heavy libraries load only when an env, searcher or backend that needs them is built.
"""

from archgym.errors import ArchGymError, ConfigError, InvalidDesignError, LogError
from archgym.objective import Constrained, MultiObjective, Objective, SingleMetric, TargetSpec, WeightedSum, pareto_front
from archgym.registry import Problem, make_problem, make_searcher, register_gymnasium
from archgym.searcher import Searcher
from archgym.simulator import Metric, Simulator
from archgym.space import (
    Categorical,
    Constraint,
    DesignSpace,
    Equal,
    Float,
    Forbidden,
    Integer,
    Monotone,
    Ordinal,
    Predicate,
    dag_inputs,
    layered,
)

__version__ = "0.1.0"

register_gymnasium()

__all__ = [
    "ArchGymError", "ConfigError", "InvalidDesignError", "LogError", "Objective", "SingleMetric", "WeightedSum",
    "TargetSpec", "Constrained", "MultiObjective", "pareto_front", "Problem", "make_problem", "make_searcher",
    "Searcher", "Metric", "Simulator", "DesignSpace", "Categorical", "Ordinal", "Integer", "Float", "Constraint",
    "Monotone", "Equal", "Forbidden", "Predicate", "layered", "dag_inputs",
]
