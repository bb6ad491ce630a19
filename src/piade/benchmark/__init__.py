"""Benchmarks in the paper's protocols: piade, its ablation and baselines, in one harness.

``run_benchmark`` trains and evaluates every (class, seed, method) of a suite into an output
directory and writes tables in the shape of the paper's Tables 2–4; ``merge`` joins directories
made on several machines.
"""

from piade.benchmark.methods import METHODS, MethodSettings
from piade.benchmark.paper import CITATION, PAPER_TABLES
from piade.benchmark.runner import ABLATION_CLASSES, BenchmarkConfig, collect, merge, run_benchmark
from piade.benchmark.suites import SUITES, list_classes
from piade.benchmark.tables import build_tables, write_tables

__all__ = [
    "ABLATION_CLASSES",
    "CITATION",
    "METHODS",
    "PAPER_TABLES",
    "SUITES",
    "BenchmarkConfig",
    "MethodSettings",
    "build_tables",
    "collect",
    "list_classes",
    "merge",
    "run_benchmark",
    "write_tables",
]
