"""The batch stream: epochs cover every sample, weights hold, resume and sharding are exact."""
from __future__ import annotations

from collections import Counter
from itertools import islice

import numpy as np
import pytest

from ftpose.data import BatchStream


def _positions(stream, count):
    return list(islice(stream.positions(0), count))


def test_an_epoch_visits_every_sample_once_with_weight_one():
    stream = BatchStream([5, 7], [1.0, 1.0], batch_size=4, seed=3)
    indices, seeds = stream.epoch(0)
    assert sorted(indices) == list(range(12))
    assert len(set(seeds.tolist())) == 12
    assert not np.array_equal(indices, stream.epoch(1)[0])   # reshuffled every epoch


def test_weights_scale_how_often_a_dataset_is_drawn():
    stream = BatchStream([10, 4], [0.5, 2.0], batch_size=2, seed=0)
    indices, _ = stream.epoch(0)
    counts = Counter(int(i) for i in indices)
    first = [i for i in counts if i < 10]
    assert len(first) == 5 and all(counts[i] == 1 for i in first)     # a random half, no repeats
    assert all(counts[i] == 2 for i in range(10, 14))                  # every one twice


def test_resuming_at_a_step_continues_the_same_stream():
    full = BatchStream([6, 3], [1.0, 1.0], batch_size=4, seed=7)
    resumed = BatchStream([6, 3], [1.0, 1.0], batch_size=4, seed=7, start_step=5)
    assert list(islice(iter(full), 9))[5:] == list(islice(iter(resumed), 4))


def test_ranks_split_each_global_batch():
    single = list(islice(iter(BatchStream([11], [1.0], batch_size=6, seed=1)), 5))
    ranks = [list(islice(iter(BatchStream([11], [1.0], batch_size=6, seed=1, rank=r, world_size=3)), 5))
             for r in range(3)]
    for step, batch in enumerate(single):
        assert batch == ranks[0][step] + ranks[1][step] + ranks[2][step]


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="not divisible by 4"):
        BatchStream([3], [1.0], batch_size=6, world_size=4)
    with pytest.raises(ValueError, match="no samples"):
        BatchStream([0], [1.0], batch_size=2)
