"""`gencrop serve`: the cropper as an HTTP service, a web page for people and a JSON API for programs.

One process loads the model once; requests pass through upload limits
(:mod:`.limits`), a safe decode (:mod:`.uploads`) and a bounded queue that
batches photos for the model (:mod:`.batching`, :mod:`.jobs`). The page in
``static/`` is plain HTML/CSS/JS and needs no network.
"""

from .app import create_app, warm_up
from .settings import ServeSettings

__all__ = ["create_app", "warm_up", "ServeSettings"]
