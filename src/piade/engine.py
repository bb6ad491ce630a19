"""The engine: composes data, network, loss and training into :func:`fit`, then calibrates.

See :mod:`piade.training` for the files a run directory holds.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from piade.checkpoint import (
    check_same_run,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
    truncate_metrics,
)
from piade.config import ModelConfig
from piade.detector import Calibration, Detector, threshold_f1_max, threshold_from_normal
from piade.errors import ConfigError
from piade.losses import ReconstructionLoss, build_perceptual_network
from piade.model import build_model
from piade.modelfile import MODEL_FILENAME
from piade.runtime import (
    autocast_dtype,
    distributed_context,
    memory_format,
    resolve_device,
    seed_everything,
)
from piade.scoring import (
    MAP_KINDS,
    RESIDUALS,
    SCORE_KINDS,
    RawScores,
    anomaly_map,
    default_map_sigma,
    image_score,
    score_images,
)
from piade.training import (
    CHECKPOINT,
    METRICS,
    RUN,
    FitResult,
    TrainConfig,
    TrainingError,
    check_finite_parameters,
    compile_advice,
    compiled_loss_terms,
    epoch_batches,
    non_finite_advice,
    precise_batch_norm,
    split_calibration,
    train_epoch,
)

log = logging.getLogger(__name__)
Network = TypeVar("Network", bound=nn.Module)


class ImageSet(Protocol):
    """What piade needs of a data set: a length and items with an ``image`` (3, H, W) in [0, 1]."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Mapping[str, Any]: ...


def stack_images(dataset: ImageSet) -> torch.Tensor:
    """All images of a piade data set as one uint8 tensor (N, 3, H, W)."""
    images = getattr(dataset, "images", None)
    if isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.ndim == 4:
        return images
    items = [dataset[i]["image"] for i in range(len(dataset))]
    return (torch.stack(items) * 255).round().clamp(0, 255).to(torch.uint8)


def _fit_arguments(
    train_set: object, out_dir: object, model_config: object, train_config: object
) -> torch.Tensor:
    """The training images (N, 3, S, S) uint8, or a ConfigError naming the bad argument."""
    if not isinstance(model_config, ModelConfig):
        hint = " (ModelConfig.from_dict(d) makes one)" if isinstance(model_config, dict) else ""
        raise ConfigError(
            f"model_config: expected a piade.ModelConfig, got {type(model_config).__name__}{hint}"
        )
    if not isinstance(train_config, TrainConfig):
        hint = " (TrainConfig(**d) makes one)" if isinstance(train_config, dict) else ""
        raise ConfigError(
            f"train_config: expected a piade.TrainConfig, got {type(train_config).__name__}{hint}"
        )
    if not isinstance(out_dir, str | os.PathLike):
        raise ConfigError(f"out_dir: expected a folder path, got {type(out_dir).__name__}")
    try:
        images = stack_images(train_set)  # type: ignore[arg-type]
    except (TypeError, IndexError, KeyError, AttributeError, RuntimeError) as error:
        raise ConfigError(
            "train_set: expected a piade data set (a length, and items holding an 'image' float"
            " tensor (3, H, W) in [0, 1]; piade.data.build_datasets makes one), got"
            f" {type(train_set).__name__} ({type(error).__name__}: {error})"
        ) from error
    size = model_config.image_size
    if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[-2:]) != (size, size):
        raise ConfigError(
            f"train_set: its images are {tuple(images.shape[1:])} but model_config.image_size is"
            f" {size}; build the data set at image_size={size}"
        )
    return images


def fit(
    train_set: ImageSet,
    out_dir: str | os.PathLike[str],
    *,
    model_config: ModelConfig,
    train_config: TrainConfig,
    data_info: dict[str, Any] | None = None,
    resume: bool = False,
    validation_set: ImageSet | None = None,
) -> FitResult:
    """Train on the normal images of ``train_set`` and write a run directory (see module doc).

    ``validation_set`` (labelled, never the test set) switches the threshold from the quantile of
    held-out normal scores to the F1-optimal one on that set.
    """
    checked = _fit_arguments(train_set, out_dir, model_config, train_config)
    out = Path(out_dir)
    cfg = train_config
    device = resolve_device(cfg.device)
    with distributed_context(device) as ddp:
        seed_everything(cfg.seed)
        images = checked.to(device)
        fit_idx, cal_idx = split_calibration(len(images), cfg.calibration_fraction, cfg.seed)
        layout = memory_format(device)
        model = build_model(model_config, encoder_weights=cfg.encoder_weights)
        model = model.to(device).to(memory_format=layout)
        perceptual = build_perceptual_network(cfg.perceptual_net, weights=cfg.perceptual_weights)
        criterion = (
            ReconstructionLoss(
                perceptual, perceptual_weight=cfg.perceptual_weight, ssim_weight=cfg.ssim_weight
            )
            .to(device)
            .to(memory_format=layout)
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        run = {"model": model_config.to_dict(), "train": cfg.to_dict(), "data": data_info or {}}
        start = _prepare_run(out, run, model, optimizer, resume=resume, is_main=ddp.is_main)
        amp = autocast_dtype(cfg.precision, device)
        scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
        trained: nn.Module = DistributedDataParallel(model) if ddp.enabled else model
        forward = compiled_loss_terms(cfg.compile)
        if cfg.compile is not None:
            log.info(
                "compiling the training step (mode %s): the first batches take a minute or more",
                cfg.compile,
            )
        last: dict[str, float] = {}
        saved = start  # the epoch of the last good checkpoint
        bar = tqdm(
            range(start, cfg.epochs),
            desc="fit",
            unit="epoch",
            initial=start,
            total=cfg.epochs,
            disable=None if ddp.is_main else True,
        )
        for epoch in bar:
            tic = time.perf_counter()
            batches = epoch_batches(
                len(fit_idx), cfg.batch_size, seed=cfg.seed, epoch=epoch, ddp=ddp
            )
            batches = [fit_idx[b] for b in batches]
            if batches:  # one copy of the epoch's order to the device, none per batch
                on_device = torch.cat(batches).to(device, non_blocking=True)
                batches = list(on_device.split([len(b) for b in batches]))
            try:
                sums = train_epoch(
                    trained,
                    criterion,
                    optimizer,
                    images,
                    batches,
                    amp=amp,
                    scaler=scaler,
                    forward=forward,
                )
                check_finite_parameters(model)
            except Exception as error:
                if type(error).__module__.startswith(("torch._dynamo", "torch._inductor")):
                    raise ConfigError(compile_advice(cfg.compile, error)) from error
                if not isinstance(error, TrainingError):
                    raise
                advice = non_finite_advice(
                    error, epoch=epoch + 1, out=out, saved_epoch=saved, lr=cfg.lr
                )
                raise TrainingError(advice) from error
            if ddp.enabled:  # batch-norm statistics: every process keeps the main process's
                for buffer in model.buffers():
                    torch.distributed.broadcast(buffer, src=0)
            last = _epoch_record(sums, epoch, time.perf_counter() - tic, optimizer, ddp.enabled)
            bar.set_postfix(loss=f"{last['loss']:.4f}")
            if ddp.is_main:
                with (out / METRICS).open("a") as handle:
                    handle.write(json.dumps(last) + "\n")
                if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs:
                    save_checkpoint(
                        out / CHECKPOINT,
                        {
                            "epoch": epoch + 1,
                            "run": json.dumps(run),
                            "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                        },
                    )
                    saved = epoch + 1
        bar.close()
        if not ddp.is_main:
            return FitResult(out, out / MODEL_FILENAME, last, model)
        batch_norm: dict[str, Any] = {"statistics": "running"}
        if cfg.precise_bn is not False:  # checkpoints keep training's statistics
            model, batch_norm = _choose_batch_norm(
                model, criterion, images[fit_idx], cfg.batch_size, always=cfg.precise_bn is True
            )
        validation = (
            None
            if validation_set is None
            else (
                stack_images(validation_set),
                np.asarray(validation_set.labels),  # type: ignore[attr-defined]
            )
        )
        calibration = calibrate(
            model,
            criterion,
            images[cal_idx],
            quantile=cfg.threshold_quantile,
            map_kind=cfg.map_kind,
            score_kind=cfg.score_kind,
            map_sigma=(
                default_map_sigma(images.shape[-1]) if cfg.map_sigma is None else cfg.map_sigma
            ),
            validation=validation,
        )
        info = {
            "loss": {"perceptual_net": cfg.perceptual_net},
            "training": run,
            "batch_norm": batch_norm,
        }
        Detector(model, criterion, calibration, info=info).save(out / MODEL_FILENAME)
        log.info("model written to %s", out / MODEL_FILENAME)
        return FitResult(out, out / MODEL_FILENAME, last, model)


def _choose_batch_norm(
    model: Network,
    criterion: ReconstructionLoss,
    images: torch.Tensor,
    batch_size: int,
    *,
    always: bool,
) -> tuple[Network, dict[str, Any]]:
    """``model`` or a copy whose batch norms hold exact statistics over the uint8 training
    ``images``: the copy when ``always``, else whichever has the lower eval-mode loss on them.

    The exact statistics match what training saw (the 400-epoch bottle model: image AUROC 0.875 ->
    0.937); on a network trained a few steps, the running averages, still close to their initial
    values, can reconstruct better. ``model`` itself (what ``--resume`` continues) is not changed.
    Returns the model and what was chosen, for the model file.
    """
    import copy

    exact = copy.deepcopy(model)
    count = precise_batch_norm(exact, images, batch_size=batch_size)
    losses = {
        "running": _mean_loss(model, criterion, images, batch_size),
        "exact": _mean_loss(exact, criterion, images, batch_size),
    }
    chosen = "exact" if always or losses["exact"] < losses["running"] else "running"
    log.info(
        "batch norm (%d layers): eval-mode training loss %.4f with running statistics, %.4f with"
        " exact ones over %d images; the model file keeps the %s statistics",
        count, losses["running"], losses["exact"], len(images), chosen,
    )  # fmt: skip
    info = {"statistics": chosen, "training_loss": losses}
    return (exact if chosen == "exact" else model), info


@torch.no_grad()
def _mean_loss(
    model: Network, criterion: ReconstructionLoss, images: torch.Tensor, batch_size: int
) -> float:
    """Mean eval-mode total loss over the uint8 ``images``, in batches of ``batch_size``."""
    totals = [
        score_images(model, criterion, batch.float() / 255).terms.total.double().sum()
        for batch in images.split(batch_size)
    ]
    return float(torch.stack(totals).sum()) / len(images)


def _prepare_run(
    out: Path,
    run: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    *,
    resume: bool,
    is_main: bool,
) -> int:
    """Create the run directory or resume it; return the first epoch to train."""
    if not resume:
        if (out / RUN).exists() or (out / CHECKPOINT).exists():
            raise ConfigError(
                f"{out} already holds a piade run; continue it with --resume, or "
                "choose another --out directory"
            )
        if torch.distributed.is_initialized():
            torch.distributed.barrier()  # every process checked before the main one writes
        if is_main:
            out.mkdir(parents=True, exist_ok=True)
            (out / RUN).write_text(json.dumps(run, indent=2) + "\n")
        return 0
    state = load_checkpoint(out / CHECKPOINT)
    saved = json.loads(state["run"])
    check_same_run(saved, run, out)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    for group in optimizer.param_groups:  # --lr may be lowered on resume (e.g. after a NaN)
        group["lr"] = run["train"]["lr"]
    if is_main:
        remove_stale_temporaries(out / CHECKPOINT)
        (out / RUN).write_text(json.dumps(run, indent=2) + "\n")
        truncate_metrics(out / METRICS, state["epoch"])
    log.info("resuming %s after epoch %d", out, state["epoch"])
    return int(state["epoch"])


def _epoch_record(
    sums: dict[str, float],
    epoch: int,
    seconds: float,
    optimizer: torch.optim.Optimizer,
    distributed: bool,
) -> dict[str, float]:
    values = torch.tensor(
        [sums[k] for k in ("n", "loss", "mse", "perceptual", "ssim")], dtype=torch.float64
    )
    if distributed:
        torch.distributed.all_reduce(values)
    n = max(values[0].item(), 1.0)
    record: dict[str, float] = {"epoch": epoch + 1, "images": int(values[0].item())}
    record |= {
        k: values[i].item() / n for i, k in enumerate(("loss", "mse", "perceptual", "ssim"), 1)
    }
    record |= {
        "lr": optimizer.param_groups[0]["lr"],
        "seconds": seconds,
        "images_per_s": values[0].item() / max(seconds, 1e-9),
    }
    return record


@torch.no_grad()
def calibrate(
    model: nn.Module,
    criterion: ReconstructionLoss,
    images: torch.Tensor,
    *,
    quantile: float,
    map_kind: str,
    score_kind: str = "loss",
    map_sigma: float = 0.0,
    validation: tuple[torch.Tensor, np.ndarray] | None = None,
    batch_size: int = 64,
) -> Calibration:
    """Score held-out normal images (uint8, N x 3 x H x W) and derive the calibration."""
    if map_kind not in MAP_KINDS:
        raise ConfigError(f"--map {map_kind!r}: use one of {', '.join(MAP_KINDS)}")
    if score_kind not in SCORE_KINDS:
        raise ConfigError(f"--score {score_kind!r}: use one of {', '.join(SCORE_KINDS)}")
    raws, sums = [], dict.fromkeys(RESIDUALS, 0.0)
    for batch in images.split(batch_size):
        raw = score_images(model, criterion, batch.float() / 255)
        for k in RESIDUALS:
            sums[k] += raw.residuals[k].double().mean(dim=(1, 2)).sum().item()
        raws.append(raw)
    scales = {k: max(v / len(images), 1e-12) for k, v in sums.items()}
    maps = [raw.residuals for raw in raws]

    def scores_of(raw: RawScores) -> torch.Tensor:
        return image_score(raw, score_kind, map_kind=map_kind, scales=scales).cpu()

    normal = torch.cat([scores_of(raw) for raw in raws]).double().numpy()
    chosen = torch.cat([anomaly_map(r, map_kind, scales, map_sigma).flatten() for r in maps])
    threshold, method = threshold_from_normal(normal, quantile), f"quantile:{quantile}"
    if validation is not None:
        val_images, val_labels = validation
        val_scores = torch.cat(
            [
                scores_of(score_images(model, criterion, b.to(images.device).float() / 255))
                for b in val_images.split(batch_size)
            ]
        )
        threshold, method = threshold_f1_max(val_scores.numpy(), val_labels), "f1-max:validation"
    return Calibration(
        n_images=len(images),
        score_mean=float(normal.mean()),
        score_std=float(normal.std()),
        threshold=threshold,
        threshold_method=method,
        map_kind=map_kind,
        map_scales=scales,
        map_normal_p99=float(np.quantile(chosen.float().cpu().numpy(), 0.99)),
        score_kind=score_kind,
        map_sigma=map_sigma,
    )


def score_dataset(
    detector: Detector, dataset: ImageSet, *, batch_size: int = 32, keep: Sequence[str] = ()
) -> dict[str, np.ndarray]:
    """Score every image of a data set; returns NumPy arrays by field name.

    Always: ``score``, ``mse``, ``perceptual``, ``ssim``, ``normalized_score``, ``label`` (predicted),
    ``lengths``, ``decoded``. Add ``anomaly_map`` / ``reconstruction`` to ``keep`` to get those too.
    """
    images = stack_images(dataset)
    fields: dict[str, list[np.ndarray]] = {}
    for batch in tqdm(images.split(batch_size), desc="score", unit="batch", disable=None):
        result = detector.score(batch.to(detector.device).float() / 255)._asdict()
        for name, value in result.items():
            if name in ("anomaly_map", "reconstruction") and name not in keep:
                continue
            fields.setdefault(name, []).append(value.cpu().numpy())
    return {k: np.concatenate(v) for k, v in fields.items()}
