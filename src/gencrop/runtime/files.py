"""Where a model's files are (kept here for the runtime's users; they live in :mod:`gencrop.model_files`,
below both the model and the runtimes)."""

from ..model_files import (  # noqa: F401
    CONFIG_NAME,
    DEFAULT_MODEL_DIR,
    ONNX_NAME,
    WEIGHTS_NAME,
    resolve_model_dir,
    weights_digest,
)
