"""The benchmark loop: every class x seed x method, one result file each, resumable.

An output directory holds::

    benchmark.json                      the suite, root and settings (a rerun must match them)
    runs/<method>/<class>/seed<k>/result.json   one finished run: metrics, cost, settings
    runs/<method>/<class>/seed<k>/scores.csv    its test images' scores, one row each
    runs/piade/<class>/seed<k>/fit/     piade's run directory (checkpoints, model file)
    results.md, results.csv, results.json       the tables (see :mod:`piade.benchmark.tables`)
    ablation.md, ablation.png           when both piade and piade-1v were run

A run whose ``result.json`` exists is never redone; an interrupted piade run resumes from its last
checkpoint. ``--classes`` splits a suite over machines; :func:`merge` joins their directories.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from piade.benchmark.authors import authors_subset
from piade.benchmark.methods import (
    IMAGE_SCORES_FILE,
    MethodSettings,
    check_methods,
    method_image_size,
    run_method,
)
from piade.benchmark.paper import FIGURE_4
from piade.benchmark.suites import PAPER_IMAGE_SIZE, list_classes, load_class, select_classes
from piade.benchmark.tables import write_tables
from piade.config import DEFAULT_LOSS_CONVENTION, LEGACY_VALUES
from piade.data import ImageDataset
from piade.errors import ConfigError
from piade.train.config import TRAIN_LEGACY_VALUES
from piade.version import __version__

log = logging.getLogger(__name__)

BENCHMARK_FILE = "benchmark.json"
RESULT_FILE = "result.json"
RUNS = "runs"
# the categories of the paper's Fig. 4: the six its Sec. 6 names, and screw, which the figure adds
ABLATION_CLASSES = tuple(FIGURE_4)


@dataclass(frozen=True, kw_only=True)
class BenchmarkConfig:
    """One benchmark: a suite at a root, the classes, methods and seeds, and the shared settings.

    ``image_size`` None is the paper's size for the suite (32 for CIFAR-10, 120 otherwise);
    ``data_options`` go to :func:`piade.data.build_datasets` (folder paths, ``on_error``, cache).
    """

    suite: str
    root: str
    methods: tuple[str, ...] = ("piade",)
    classes: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    image_size: int | None = None
    center_crop: float = 1.0
    epochs: int | None = None
    batch_size: int | None = None
    lr_schedule: str = "constant"
    baseline_epochs: int | None = None
    device: str = "auto"
    backbone: str = "resnet18"
    encoder_weights: str | None = "imagenet"
    perceptual_net: str = "vgg11"
    perceptual_depth: int = 4
    perceptual_weights: str | None = "imagenet"
    loss_convention: str = DEFAULT_LOSS_CONVENTION
    map_kind: str = "ssim"
    data_options: dict[str, Any] = field(default_factory=dict)
    command: str = ""  # the command line that started the benchmark, recorded in every result

    def settings(self, seed: int) -> MethodSettings:
        """One seed's settings: MethodSettings's other fields are this config's of the same name."""
        shared = {f.name: getattr(self, f.name) for f in fields(MethodSettings) if f.name != "seed"}
        image_size = self.image_size or PAPER_IMAGE_SIZE[self.suite]
        return MethodSettings(**shared | {"image_size": image_size, "seed": seed})


def run_benchmark(config: BenchmarkConfig, out_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Run every missing (class, seed, method) of ``config`` into ``out_dir``; write the tables.

    Returns every result in ``out_dir`` (earlier ones included).
    """
    out = Path(out_dir)
    methods = check_methods(list(config.methods))
    classes = select_classes(
        list_classes(config.suite, config.root, **config.data_options), config.classes, config.suite
    )
    _claim(out, config)
    for cls in classes:
        for seed in config.seeds:
            _run_class(config, out, cls, seed, methods)
            write_tables(out, collect([out]), suite=config.suite)
    results = collect([out])
    write_tables(out, results, suite=config.suite)
    return results


def _run_class(config: BenchmarkConfig, out: Path, cls: str, seed: int, methods: list[str]) -> None:
    settings = config.settings(seed)
    pending = [m for m in methods if not (_run_dir(out, m, cls, seed) / RESULT_FILE).is_file()]
    if not pending:
        log.info("%s seed %d: every method already done", cls, seed)
        return
    data: dict[int, tuple[ImageDataset, ImageDataset]] = {}
    for method in pending:
        size = method_image_size(method, settings.image_size)
        if size not in data:
            data[size] = load_class(
                config.suite,
                config.root,
                cls,
                image_size=size,
                seed=seed,
                center_crop=config.center_crop,
                **config.data_options,
            )
        train, test = data[size]
        run_dir = _run_dir(out, method, cls, seed)
        run_dir.mkdir(parents=True, exist_ok=True)
        log.info(
            "%s %s seed %d: %d train, %d test images", method, cls, seed, len(train), len(test)
        )
        started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        subset = authors_subset(config.suite, test.samples)
        outcome = run_method(method, train, test, settings, run_dir, subset=subset)
        result = {
            "suite": config.suite,
            "class": cls,
            "method": method,
            "seed": seed,
            **outcome,
            "settings": settings.to_dict() | {"image_size": size},
            "root": config.root,
            "piade_version": __version__,
            "command": config.command,
            "started": started,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        _write_json(run_dir / RESULT_FILE, result)
        auroc = result["metrics"]["image_auroc"]
        log.info("%s %s seed %d: image AUROC %s", method, cls, seed, auroc)


def _run_dir(out: Path, method: str, cls: str, seed: int) -> Path:
    return out / RUNS / method / cls / f"seed{seed}"


def _claim(out: Path, config: BenchmarkConfig) -> None:
    """Record the benchmark in ``out``; refuse an ``out`` that holds another suite or settings."""
    record = {
        "suite": config.suite,
        "root": config.root,
        "settings": _shared_settings(config),
    }
    path = out / BENCHMARK_FILE
    if path.is_file():
        saved = _with_defaults(json.loads(path.read_text()))
        diffs = [k for k in ("suite", "settings") if saved.get(k) != record[k]]
        if diffs:
            raise ConfigError(
                f"{out} holds a benchmark with other settings ({_describe_diff(saved, record)}); "
                "use the same settings to continue it, or another --out"
            )
        return
    if out.exists() and any(out.iterdir()):
        raise ConfigError(
            f"{out} is not empty and holds no {BENCHMARK_FILE}; choose a new --out directory"
        )
    out.mkdir(parents=True, exist_ok=True)
    _write_json(path, record)


# Settings added after benchmarks were recorded, with the value those benchmarks ran with: the
# model and training settings' own legacy values, where the benchmark has the setting too
_LATER_SETTINGS = {
    name: value
    for name, value in (LEGACY_VALUES | TRAIN_LEGACY_VALUES).items()
    if name in {f.name for f in fields(MethodSettings)}
}


def _with_defaults(record: dict[str, Any]) -> dict[str, Any]:
    """A ``benchmark.json`` record with the settings it predates filled in, so it still compares."""
    if "settings" not in record:
        return record
    return record | {"settings": _LATER_SETTINGS | record["settings"]}


def _shared_settings(config: BenchmarkConfig) -> dict[str, Any]:
    """The settings every result of an output directory must share (not classes/methods/seeds)."""
    settings = config.settings(0).to_dict()
    settings.pop("seed")
    settings.pop("device")  # a run may move between machines
    return settings | {"data_options": {k: str(v) for k, v in config.data_options.items()}}


def _describe_diff(saved: dict[str, Any], record: dict[str, Any]) -> str:
    if saved.get("suite") != record["suite"]:
        return f"suite {saved.get('suite')} vs {record['suite']}"
    old, new = saved.get("settings", {}), record["settings"]
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ", ".join(f"{k} {old.get(k)!r} vs {new.get(k)!r}" for k in keys)


def collect(out_dirs: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Every result file under the ``runs/`` of ``out_dirs``, sorted by class, method and seed."""
    results = []
    for out in out_dirs:
        for path in sorted(Path(out).glob(f"{RUNS}/*/*/seed*/{RESULT_FILE}")):
            try:
                results.append(json.loads(path.read_text()))
            except (OSError, json.JSONDecodeError) as error:
                raise ConfigError(
                    f"cannot read {path} ({error}); delete it to run that class again"
                ) from error
    return results


def merge(
    inputs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str]
) -> list[dict[str, Any]]:
    """Join benchmark directories (e.g. one per machine) into ``out_dir`` and write its tables."""
    out = Path(out_dir)
    records = []
    for source in inputs:
        path = Path(source) / BENCHMARK_FILE
        if not path.is_file():
            raise ConfigError(f"{source} is not a piade benchmark directory (no {BENCHMARK_FILE})")
        records.append((Path(source), _with_defaults(json.loads(path.read_text()))))
    first_dir, first = records[0]
    for other_dir, other in records[1:]:
        if (other["suite"], other["settings"]) != (first["suite"], first["settings"]):
            raise ConfigError(
                f"cannot merge {other_dir} into {first_dir}: different benchmarks "
                f"({_describe_diff(first, other)})"
            )
    own = out / BENCHMARK_FILE
    if own.is_file() and _with_defaults(json.loads(own.read_text())) != first:
        raise ConfigError(f"{out} holds a different benchmark; merge into a new directory")
    out.mkdir(parents=True, exist_ok=True)
    _write_json(own, first)
    for source, _ in records:
        _copy_results(source, out)
    results = collect([out])
    write_tables(out, results, suite=first["suite"])
    return results


def _copy_results(source: Path, out: Path) -> None:
    for path in sorted(source.glob(f"{RUNS}/*/*/seed*/{RESULT_FILE}")):
        target = out / path.relative_to(source)
        if target.resolve() == path.resolve():
            continue
        if target.is_file():
            if json.loads(target.read_text())["metrics"] != json.loads(path.read_text())["metrics"]:
                raise ConfigError(
                    f"{path} and {target} are the same run with different results; remove one "
                    "of them before merging"
                )
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        scores = path.with_name(IMAGE_SCORES_FILE)
        if scores.is_file():  # runs made before the file existed have none
            shutil.copyfile(scores, target.with_name(IMAGE_SCORES_FILE))
        shutil.copyfile(path, target)


def _write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON atomically (a crash never leaves half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2) + "\n")
    os.replace(tmp, path)
