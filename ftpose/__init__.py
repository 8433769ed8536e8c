"""ftpose: real-time multi-person 2D pose estimation with deep feature transfer.

The public API, each name imported from its home on first use (so that
``import ftpose.keypoints`` stays torch-free):

- ``Predictor``: photos and frames -> ``People`` (``ftpose.predictor``);
- ``People``: the people found in one image (``ftpose.grouping``);
- ``Tracker``: people across video frames, with ids (``ftpose.tracking``);
- ``create_model``, ``list_models``, ``load_model``: the model registry and weights
  (``ftpose.models``);
- ``read_image``, ``expand_inputs``, ``VideoReader``: reading inputs (``ftpose.files``,
  ``ftpose.sources``).
"""
__version__ = "0.1.0"

_PUBLIC_API = {
    "Predictor": "ftpose.predictor",
    "People": "ftpose.grouping",
    "create_model": "ftpose.models",
    "list_models": "ftpose.models",
    "load_model": "ftpose.models",
    "read_image": "ftpose.files",
    "expand_inputs": "ftpose.sources",
    "VideoReader": "ftpose.sources",
    "Tracker": "ftpose.tracking",
}
__all__ = sorted(_PUBLIC_API)


def __getattr__(name):
    if name in _PUBLIC_API:
        import importlib

        return getattr(importlib.import_module(_PUBLIC_API[name]), name)
    raise AttributeError(f"module 'ftpose' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_PUBLIC_API})
