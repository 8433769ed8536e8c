"""Accuracy evaluation: COCO (pycocotools), MPII, PoseTrack and error analysis."""
from __future__ import annotations

import contextlib

from ftpose.files import InputError


@contextlib.contextmanager
def malformed_as_input_error(source, what: str = "content"):
    """Turn a parser's KeyError/TypeError/... on an unexpected structure into a one-line
    :class:`InputError` naming ``source``; the parser's own ``InputError`` passes through."""
    try:
        yield
    except InputError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        raise InputError(source, f"{what} is malformed ({type(e).__name__}: {e})") from None
