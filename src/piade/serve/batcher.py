"""Micro-batching: requests that arrive together are scored together.

Each request puts its image (uint8, 3 x S x S, already resized) on a queue and awaits a future. One
task takes the first waiting image, then whatever else arrives within ``window_s`` (up to
``max_batch`` images), and scores them as one batch on a single scoring thread, so the event loop
keeps accepting requests while the network runs, and the network never runs twice at once. Under
load, batches fill up and throughput approaches that of ``piade predict``; a lone request waits at
most ``window_s`` more than it would alone.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from piade.inference.predict import Scorer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    """One image's result: the fields of :class:`~piade.inference.detector.Detection` as numbers,
    and its anomaly map (h, w) at the model's resolution."""

    score: float
    normalized_score: float
    label: int
    mse: float
    perceptual: float
    ssim: float
    decoded: int
    anomaly_map: np.ndarray  # float32 (h, w)
    batch_size: int  # how many images were scored together with this one


@dataclass
class _Job:
    image: np.ndarray  # (3, S, S) uint8
    future: asyncio.Future[Scored]


class MicroBatcher:
    """Scores images for concurrent requests in batches of up to ``max_batch``."""

    def __init__(self, scorer: Scorer, *, max_batch: int, window_s: float) -> None:
        self.scorer, self.max_batch, self.window_s = scorer, max_batch, window_s
        self.batches = 0  # how many batches were scored, and how many images in all
        self.images = 0
        self._queue: asyncio.Queue[_Job] | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piade-score")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="piade-micro-batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._thread.shutdown(wait=True, cancel_futures=True)

    async def score(self, image: np.ndarray) -> Scored:
        """Score one image (3, S, S) uint8 with whatever else is waiting."""
        assert self._queue is not None, "start() the batcher first"
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(image, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            deadline = loop.time() + self.window_s
            while len(jobs) < self.max_batch:
                if not self._queue.empty():
                    jobs.append(self._queue.get_nowait())
                    continue
                left = deadline - loop.time()
                if left <= 0:
                    break
                await asyncio.sleep(min(left, 0.002))  # polling: no queue.get() to cancel
            jobs = [job for job in jobs if not job.future.cancelled()]  # clients that left
            if not jobs:
                continue
            try:
                results = await loop.run_in_executor(self._thread, self._score, jobs)
            except Exception as error:  # one failed batch fails its requests, not the server
                log.exception("scoring a batch of %d image(s) failed", len(jobs))
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(error)
                continue
            for job, result in zip(jobs, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)

    def _score(self, jobs: list[_Job]) -> list[Scored]:
        batch = np.stack([job.image for job in jobs]).astype(np.float32) / 255
        found = self.scorer.score(batch)
        self.batches, self.images = self.batches + 1, self.images + len(jobs)
        return [
            Scored(
                score=float(found["score"][k]),
                normalized_score=float(found["normalized_score"][k]),
                label=int(found["label"][k]),
                mse=float(found["mse"][k]),
                perceptual=float(found["perceptual"][k]),
                ssim=float(found["ssim"][k]),
                decoded=int(found["decoded"][k]),
                anomaly_map=found["anomaly_map"][k],
                batch_size=len(jobs),
            )
            for k in range(len(jobs))
        ]
