"""``ftpose serve``: a web page and a JSON API for pose estimation (Starlette + uvicorn, the ``serve`` extra).

:func:`create_app` builds the ASGI application around a
:class:`~ftpose.predictor.Predictor`; see :mod:`ftpose.server.app` for the routes.
"""
from ftpose.server.app import DEFAULT_MAX_UPLOAD_BYTES, create_app

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "create_app"]
