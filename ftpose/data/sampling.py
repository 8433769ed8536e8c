"""A deterministic, resumable, shardable stream of training batches.

The stream is a pure function of ``(sizes, weights, seed)``: epoch ``e`` is a fixed
shuffle of the mixed datasets and every sample position carries its own augmentation
seed.  Step ``s`` of a run with global batch ``B`` consumes positions
``[s*B, (s+1)*B)``, and rank ``r`` of ``W`` takes the ``r``-th contiguous slice of
them.  So resuming at step ``s`` needs nothing but ``s``, and ``W`` processes with a
per-rank batch of ``B/W`` see exactly the samples one process sees with batch ``B``.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np


class BatchStream:
    """Iterable of per-rank batches: lists of ``(global_index, augmentation_seed)``."""

    def __init__(self, sizes: list[int], weights: list[float], batch_size: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, start_step: int = 0):
        if batch_size % world_size:
            raise ValueError(f"global batch size {batch_size} is not divisible by {world_size} processes")
        self.sizes = [int(n) for n in sizes]
        self.weights = [float(w) for w in weights]
        self.counts = [int(round(n * w)) for n, w in zip(self.sizes, self.weights)]
        if sum(self.counts) == 0:
            raise ValueError("the training data has no samples (no person with enough keypoints?)")
        self.offsets = np.cumsum([0] + self.sizes)[:-1]
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start_step = start_step

    @property
    def epoch_length(self) -> int:
        return sum(self.counts)

    def epoch(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """Global indices and augmentation seeds of every position of one epoch."""
        rng = np.random.default_rng([self.seed, epoch])
        parts = []
        for size, count, offset in zip(self.sizes, self.counts, self.offsets):
            if count == 0:
                continue
            repeats = -(-count // size)  # whole shuffles, then cut: each anchor at most once more than another
            order = np.concatenate([rng.permutation(size) for _ in range(repeats)])[:count]
            parts.append(order + offset)
        indices = rng.permutation(np.concatenate(parts))
        seeds = rng.integers(0, 2**62, len(indices))
        return indices, seeds

    def positions(self, start: int) -> Iterator[tuple[int, int]]:
        """``(index, seed)`` for every position from ``start`` on, forever."""
        epoch, offset = divmod(start, self.epoch_length)
        while True:
            indices, seeds = self.epoch(epoch)
            for i in range(offset, len(indices)):
                yield int(indices[i]), int(seeds[i])
            epoch, offset = epoch + 1, 0

    def batch(self, step: int) -> list[tuple[int, int]]:
        """This rank's ``(index, seed)`` positions of step ``step`` (what iterating yields for it)."""
        per_rank = self.batch_size // self.world_size
        return list(itertools.islice(self.positions(step * self.batch_size + self.rank * per_rank), per_rank))

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        per_rank = self.batch_size // self.world_size
        stream = self.positions(self.start_step * self.batch_size)
        while True:
            batch = [next(stream) for _ in range(self.batch_size)]
            yield batch[self.rank * per_rank:(self.rank + 1) * per_rank]
