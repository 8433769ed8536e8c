"""ftpose: real-time multi-person 2D pose estimation with deep feature transfer."""
__version__ = "0.1.0"

# The model API, imported on first use so that `import ftpose.keypoints` stays torch-free.
_MODEL_API = ("create_model", "list_models", "load_model")


def __getattr__(name):
    if name in _MODEL_API:
        import ftpose.models
        return getattr(ftpose.models, name)
    if name == "Predictor":
        from ftpose.predictor import Predictor
        return Predictor
    if name == "Tracker":
        from ftpose.tracking import Tracker
        return Tracker
    raise AttributeError(f"module 'ftpose' has no attribute {name!r}")
