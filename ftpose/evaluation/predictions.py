"""Predict over a dataset: the one loop that eval, training validation and the benchmarks share.

The images of a ground-truth file are read and run through a
:class:`~ftpose.predictor.Predictor` a batch at a time; an unreadable image is reported
and skipped, so one bad file costs one image, not the evaluation.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

from ftpose.files import InputError, read_image


def predict_images(predictor, entries: Sequence[tuple[Hashable, Path]], batch_size: int | None = None,
                   on_error: Callable[[InputError], None] | None = None, progress: bool = False) -> dict:
    """``{key: People}`` for each ``(key, image path)`` of ``entries``, in image pixels.

    Images go to :meth:`~ftpose.predictor.Predictor.predict_batch` ``batch_size`` at a
    time (default: the predictor's).  An image that cannot be read is passed to
    ``on_error`` (default: raise) and left out.  ``progress`` shows a bar on stderr.
    """
    from tqdm import tqdm

    from ftpose.export.backends import pipeline_threads

    batch_size = batch_size or predictor.batch_size
    people_by_key = {}
    with tqdm(total=len(entries), desc="predicting", unit="image", file=sys.stderr,
              disable=not progress or len(entries) < 2) as bar, pipeline_threads(predictor.backend):
        for start in range(0, len(entries), batch_size):
            keys, batch = [], []
            for key, path in entries[start:start + batch_size]:
                try:
                    batch.append(read_image(path))
                    keys.append(key)
                except InputError as e:
                    if on_error is None:
                        raise
                    on_error(e)
            people_by_key.update(zip(keys, predictor.predict_batch(batch) if batch else []))
            bar.update(len(entries[start:start + batch_size]))
    return people_by_key
