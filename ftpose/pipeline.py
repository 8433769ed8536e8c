"""From inputs to people, frame by frame: batching, thresholds, tracking, smoothing.

:class:`Pipeline` runs a :class:`~ftpose.predictor.Predictor` over sources (images,
videos, cameras, streams) and hands every processed frame, as a :class:`FrameResult`,
to its *sinks* (``ftpose.writers``: the journal, overlays, OpenPose JSON ...), in input
order, as soon as it is done.  Nothing is accumulated, so memory stays flat however
long the video; what is written survives an interrupted run.

Frames are grouped into *sequences*, the unit a tracker follows and a sink opens and
closes: a video, a camera or stream, or (with tracking) the images of one folder,
taken as consecutive frames (as PoseTrack ships its videos); an untracked image is a
sequence of its own.  Frames are sent to the network ``predictor.batch_size`` at a
time, across sequence boundaries.

Per frame: predict -> drop people below the thresholds -> track -> smooth (causal
One-Euro).  With offline smoothing a sequence's people are kept (not its images) until
it ends, smoothed as a whole, and its frames then read a second time for the sinks;
that needs a file, so live sources cannot be smoothed offline.
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from ftpose.files import InputError, PartialInputWarning
from ftpose.grouping import People
from ftpose.smoothing import OfflineParams, OneEuroParams, OneEuroSmoother, smooth_offline
from ftpose.sources import FrameSelection, Source, VideoReader, read_source_image
from ftpose.tracking import Tracker, TrackerParams

DEFAULT_MIN_SCORE = 0.1
"""People scoring less are dropped by default.  On the bundled sample photo (4 people)
both shipped networks score the 4 people 0.19-0.58 and every other find (fragments of
1-7 joints) 0.07 or less (``tests/test_pipeline.py`` checks it)."""

DEFAULT_MIN_JOINTS = 3
"""People with fewer joints are dropped by default (OpenPose's minimum too)."""


@dataclass(frozen=True)
class PipelineSettings:
    """What happens to each frame's people.  ``track`` / ``smooth`` / ``smooth_offline``
    are None when off; smoothing needs tracking (the filter state is per track)."""

    min_score: float = DEFAULT_MIN_SCORE
    min_joints: int = DEFAULT_MIN_JOINTS
    max_people: int | None = None
    track: TrackerParams | None = None
    smooth: OneEuroParams | None = None
    smooth_offline: OfflineParams | None = None
    frames: FrameSelection = field(default_factory=FrameSelection)
    keep_maps: bool = False
    max_pixels: int | None = None     # images with more are refused (None: ftpose.files.MAX_PIXELS)

    def __post_init__(self):
        if (self.smooth or self.smooth_offline) and self.track is None:
            raise ValueError("smoothing follows tracks: it needs tracking on")


@dataclass
class Sequence:
    """Frames a tracker follows from start to end: a video, a stream, a folder of frames."""

    name: str                  # outputs name the sequence after it (a video's name without suffix)
    sources: list[Source]
    fps: float | None = None   # None for images
    frame_count: int = 0       # frames expected (0: unknown)
    read_failed: bool = False  # reading stopped on an error

    @property
    def is_video(self) -> bool:
        return self.sources[0].is_video

    @property
    def is_live(self) -> bool:
        return self.sources[0].is_live


@dataclass
class FrameResult:
    """One processed frame: where it came from, the image, the people found in it.

    ``frame`` is the frame number within a video or folder sequence (None for a lone
    image); ``time`` is seconds from the video's start (None for images).
    """

    sequence: Sequence
    source: Source
    frame: int | None
    time: float | None
    image: np.ndarray
    people: People
    maps: object | None = None


class Sink:
    """Receives a run's frames; every method may raise ``InputError`` or ``OSError``,
    which the pipeline reports against the sequence before going on with the next."""

    def start(self, sequence: Sequence) -> None:
        """A sequence begins (called before its first frame)."""

    def frame(self, result: FrameResult) -> None:
        """One processed frame, in order."""

    def end(self, sequence: Sequence, complete: bool) -> None:
        """The sequence is over; ``complete`` is False when it stopped on an error."""

    def close(self) -> None:
        """The run is over (also after an interruption)."""


def sequences(sources: Iterable[Source], tracked: bool) -> list[Sequence]:
    """Group sources into sequences: each video alone; images alone, or, when
    ``tracked``, runs of images in the same folder together, named after the folder."""
    out: list[Sequence] = []
    for source in sources:
        if source.is_video or source.kind == "stdin" or not tracked:
            out.append(Sequence(str(source.name.with_suffix("")), [source]))
            continue
        folder = str(source.name.parent) if str(source.name.parent) != "." else str(source.name.with_suffix(""))
        last = out[-1] if out else None
        if last is not None and not last.is_video and last.name == folder and last.sources[0].kind == "file":
            last.sources.append(source)
        else:
            out.append(Sequence(folder, [source]))
    return out


@dataclass
class _Item:
    sequence: Sequence
    source: Source
    frame: int | None
    time: float | None
    image: np.ndarray


class Pipeline:
    """Runs ``predictor`` over sequences, frame results to ``sinks`` (see the module docstring).

    ``on_error`` hears each ``InputError`` (an unreadable input, an output that cannot
    be written); the run goes on with the next sequence.  ``on_warning`` hears each
    ``PartialInputWarning`` (an input read only in part: corrupt JPEG data, a video cut
    short), whose frames are still processed.  ``progress`` shows a tqdm bar with
    frames per second on a terminal.
    """

    def __init__(self, predictor, settings: PipelineSettings | None = None, sinks: Iterable[Sink] = (),
                 on_error: Callable[[InputError], None] | None = None, progress: bool = True,
                 on_warning: Callable[[Warning], None] | None = None):
        self.predictor = predictor
        self.settings = settings or PipelineSettings()
        self.sinks = list(sinks)
        self.on_error = on_error or (lambda error: print(f"error: {error}", file=sys.stderr))
        self.on_warning = on_warning or (lambda warning: print(f"warning: {warning}", file=sys.stderr))
        self.progress = progress
        self.frames = self.people = self.failed = self.partial = 0
        self._bar = None

    # -- public API --------------------------------------------------------------------

    def run(self, work: Iterable[Sequence]) -> None:
        """Process the sequences in order."""
        from tqdm import tqdm

        work = list(work)
        total = sum(len(s.sources) for s in work if not s.is_video)
        with tqdm(total=total, unit="frame", disable=None if self.progress else True, file=sys.stderr,
                  dynamic_ncols=True, smoothing=0.1) as bar:
            self._bar = bar
            try:
                self._process(work)
            finally:
                for sink in self.sinks:
                    sink.close()
                self._bar = None

    def report(self, error: InputError) -> None:
        """Count and pass on a per-item error (written above the progress bar)."""
        self.failed += 1
        self._above_bar(self.on_error, error)

    def _above_bar(self, say, what) -> None:
        if self._bar is not None:
            self._bar.clear()
        say(what)
        if self._bar is not None:
            self._bar.refresh()

    def _read(self, read, *args):
        """``read(*args)``, its ``PartialInputWarning``s counted and passed to ``on_warning``."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PartialInputWarning)
            try:
                return read(*args)
            finally:
                for warning in caught:
                    if issubclass(warning.category, PartialInputWarning):
                        self.partial += 1
                        self._above_bar(self.on_warning, warning.message)
                    else:
                        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)

    # -- the frame loop ----------------------------------------------------------------

    def _process(self, work) -> None:
        state = _SequenceState(None)
        batch: list[_Item] = []
        for sequence in work:
            for item in self._items(sequence):
                batch.append(item)
                if len(batch) >= self.predictor.batch_size:
                    state = self._predict(batch, state)
                    batch = []
        state = self._predict(batch, state)
        self._finish(state)

    def _predict(self, batch, state: _SequenceState) -> _SequenceState:
        if not batch:
            return state
        maps = self.predictor.maps_batch([item.image for item in batch])
        for item, item_maps in zip(batch, maps):
            if state.sequence is not item.sequence:
                self._finish(state)
                state = self._begin(item.sequence)
            if state.failed:
                continue
            people = self.predictor.decode(item_maps)
            settings = self.settings
            people = people.filtered(settings.min_score, settings.min_joints, settings.max_people)
            if state.tracker is not None:
                people = state.tracker.update(people, item.frame)
            if state.smoother is not None:
                people = state.smoother.smooth(people, _seconds(item))
            if state.offline is not None:
                state.offline.append(people)
            else:
                self._emit(state, item, people, item_maps if settings.keep_maps else None)
            self._bar.update()
        return state

    def _begin(self, sequence: Sequence) -> _SequenceState:
        settings = self.settings
        state = _SequenceState(sequence,
                               tracker=Tracker(settings.track) if settings.track else None,
                               smoother=OneEuroSmoother(settings.smooth) if settings.smooth else None,
                               offline=[] if settings.smooth_offline and (sequence.is_video or
                                                                          len(sequence.sources) > 1) else None)
        if state.offline is None:
            self._start_sinks(state)
        return state

    def _start_sinks(self, state: _SequenceState) -> None:
        try:
            for sink in self.sinks:
                sink.start(state.sequence)
        except (InputError, OSError) as e:
            self._fail(state, e)

    def _emit(self, state: _SequenceState, item: _Item, people: People, maps) -> None:
        result = FrameResult(item.sequence, item.source, item.frame, item.time, item.image, people, maps)
        state.frames += 1
        self.frames += 1
        self.people += len(people)
        try:
            for sink in self.sinks:
                sink.frame(result)
        except (InputError, OSError) as e:
            self._fail(state, e)

    def _finish(self, state: _SequenceState) -> None:
        if state.sequence is None:
            return
        if state.offline is not None and not state.failed:
            self._replay(state)
        for sink in self.sinks:
            try:
                sink.end(state.sequence, not state.failed and not state.sequence.read_failed)
            except (InputError, OSError) as e:
                self._fail(state, e)

    def _replay(self, state: _SequenceState) -> None:
        """Offline smoothing: smooth the whole sequence, then read its frames again for the sinks."""
        smoothed = smooth_offline(state.offline, self.settings.smooth_offline)
        state.offline = None
        self._start_sinks(state)
        items = self._items(state.sequence, count=False)
        for people, item in zip(smoothed, items):
            if state.failed:
                break
            self._emit(state, item, people, None)
        items.close()

    def _fail(self, state: _SequenceState, error: Exception) -> None:
        if not isinstance(error, InputError):
            error = InputError(state.sequence.name, f"cannot write outputs ({getattr(error, 'strerror', None) or error})")
        if not state.failed:
            self.report(error)
        state.failed = True

    # -- reading -----------------------------------------------------------------------

    def _items(self, sequence: Sequence, count: bool = True) -> Iterator[_Item]:
        """The frames of a sequence; read errors are reported (once) and end it."""
        if sequence.is_video:
            yield from self._video_items(sequence, count)
            return
        for number, source in enumerate(sequence.sources):
            try:
                image = self._read(read_source_image, source, self.settings.max_pixels)
            except InputError as e:
                if count:
                    self.report(e)
                    self._bar.update()
                continue
            yield _Item(sequence, source, number if len(sequence.sources) > 1 else None, None, image)

    def _video_items(self, sequence: Sequence, count: bool) -> Iterator[_Item]:
        source = sequence.sources[0]
        try:
            reader = VideoReader(source, self.settings.frames)
            if count:
                sequence.fps, sequence.frame_count = reader.fps, reader.frame_count
                self._bar.total += reader.frame_count
                self._bar.refresh()
            frames = iter(reader)
            # warnings caught around each read only: never across a yield, when other code runs
            while (frame := self._read(next, frames, None)) is not None:
                index, image = frame
                yield _Item(sequence, source, index, index / reader.fps, image)
        except InputError as e:
            if count:
                self.report(e)
                sequence.read_failed = True


def _seconds(item: _Item) -> float:
    """The time the smoother sees: the video's clock, else one frame per 1/25 s."""
    if item.time is not None:
        return item.time
    return (item.frame or 0) / 25.0


@dataclass
class _SequenceState:
    sequence: Sequence | None
    tracker: Tracker | None = None
    smoother: OneEuroSmoother | None = None
    offline: list | None = None
    frames: int = 0
    failed: bool = False
