"""Contracts of the onnxruntime runtime on a hand-built ONNX graph (no torch, no export, no shared data).

The graph answers with its ``shape`` input as the crop, so what the runtime feeds it can be read
back; its metadata carries a chosen weights digest, so the stale-export check can be put to work.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from gencrop.runtime import load_network, weights_digest  # noqa: E402
from gencrop.runtime.loading import onnx_state  # noqa: E402

DIM = 32


def _echo_graph(path, digest: str | None, variant: str = "gencrop-c") -> None:
    """crop = shape + 0 * subject, weights = the image's mean over channels: (B, DIM, DIM)."""
    f = TensorProto.FLOAT
    inputs = [
        helper.make_tensor_value_info("image", f, ["B", 3, DIM, DIM]),
        helper.make_tensor_value_info("subject", f, ["B", 4]),
        helper.make_tensor_value_info("shape", f, ["B", 4]),
    ]
    outputs = [
        helper.make_tensor_value_info("crop", f, ["B", 4]),
        helper.make_tensor_value_info("weights", f, ["B", DIM, DIM]),
    ]
    zero = helper.make_tensor("zero", f, [], [0.0])
    nodes = [
        helper.make_node("Mul", ["subject", "zero"], ["nothing"]),
        helper.make_node("Add", ["shape", "nothing"], ["crop"]),
        helper.make_node("ReduceMean", ["image"], ["weights"], axes=[1], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "echo", inputs, outputs, initializer=[zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    config = {"image_size": DIM, "in_channels": 3, "variant": variant}
    meta = {
        "format": "gencrop-onnx-1",
        "mean": json.dumps([0.485, 0.456, 0.406]),
        "std": json.dumps([0.229, 0.224, 0.225]),
        "gencrop_config": json.dumps(config),
        "input_size": str(DIM),
    }
    if digest is not None:
        meta["gencrop_digest"] = digest
    helper.set_model_props(model, meta)
    onnx.save(model, str(path))


@pytest.fixture()
def model_dir(tmp_path):
    """A model directory: config + (stand-in) weights, whose digest an export must carry."""
    d = tmp_path / "model"
    d.mkdir()
    (d / "config.json").write_text(json.dumps({"image_size": DIM, "in_channels": 3, "variant": "gencrop-c"}))
    (d / "model.safetensors").write_bytes(b"weights of this model")
    return d


def test_the_onnx_network_feeds_the_requested_shapes(tmp_path):
    path = tmp_path / "echo.onnx"
    _echo_graph(path, None)
    net = load_network(path, runtime="onnx")
    assert net.info.takes_shape
    images = np.zeros((2, 3, DIM, DIM), np.float32)
    subjects = np.array([[1, 2, 10, 12], [3, 4, 20, 30]], np.float32)
    shapes = np.array([[0.25, np.log(16 / 9), 1, 1], [0.0, np.log(4 / 5), 0, 1]], np.float32)
    crops, weights = net(images, subjects, shapes)
    np.testing.assert_array_equal(crops, shapes)  # the requests reached the graph unchanged, row by row
    assert weights.shape == (2, DIM, DIM)
    crops, _ = net(images, subjects, None)  # no request: the "no preference" row of zeros
    np.testing.assert_array_equal(crops, np.zeros((2, 4), np.float32))


def test_a_fresh_export_is_used_and_a_stale_one_is_refused(model_dir):
    _echo_graph(model_dir / "model.onnx", weights_digest(model_dir))
    assert onnx_state(model_dir) == "fresh"
    assert load_network(model_dir, runtime="onnx").runtime == "onnx"
    # the weights change after the export (a re-trained model): the file's digest no longer matches
    (model_dir / "model.safetensors").write_bytes(b"weights of a re-trained model")
    assert onnx_state(model_dir) == "stale"
    with pytest.raises(ValueError, match="re-export"):
        load_network(model_dir, runtime="onnx")


@pytest.mark.parametrize("digest", ["0" * 64, "", None])
def test_an_export_with_any_other_digest_is_stale(model_dir, digest):
    _echo_graph(model_dir / "model.onnx", digest)
    assert onnx_state(model_dir) == "stale"
    with pytest.raises(ValueError, match="other weights"):
        load_network(model_dir, runtime="onnx")
