#!/usr/bin/env python3
"""Builds the tiny detector fixtures in this folder, byte for byte reproducibly.

Requires `pip install onnx==1.17.0` (the version the committed files were made with).
Run from anywhere: `python3 models/tiny/make_tiny.py`.

The model is not trained: its output is computed from the input so tests can assert a real
ONNX Runtime inference. It has the Ultralytics YOLOv8/YOLO11 detection layout:

    images  float32 [B, 3, S, S]  (RGB, 0..1, NCHW)
    output0 float32 [B, 4 + 2, A] (cx, cy, w, h in input pixels, then 2 class scores)

The image is cut into a grid of 8x8-pixel cells, one anchor per cell (A = (S/8)^2, row-major).
Each anchor's box is its cell (centre of the cell, w = h = 8); its class-0 score is the mean of
the red channel over the cell and its class-1 score the mean of the blue channel. A pure red
8x8 square aligned to a cell therefore scores 1.0 for class 0 at exactly that anchor; a dark
frame scores 0 everywhere.

Outputs:
  model.onnx                 S = 64, A = 64 (described by model.toml)
  invalid/wrong-shape.onnx   S = 32, A = 16 (same graph at another size: fails the contract
                             check against invalid/wrong-shape.toml, which declares 64x64)
  invalid/truncated.onnx     the first 100 bytes of model.onnx (not a loadable model)
  end-to-end/model.onnx      S = 64, output0 [B, 64, 6]: rows x1, y1, x2, y2, red score,
                             class 0 (the layout of an export with built-in NMS)
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CELL = 8
HERE = os.path.dirname(os.path.abspath(__file__))


def build(size: int, end_to_end: bool = False) -> onnx.ModelProto:
    grid = size // CELL
    anchors = grid * grid
    # Constant boxes [1, 4, A]: cell centres and sizes, anchor index = row * grid + col.
    boxes = np.zeros((1, 4, anchors), dtype=np.float32)
    for row in range(grid):
        for col in range(grid):
            a = row * grid + col
            boxes[0, :, a] = [col * CELL + CELL / 2, row * CELL + CELL / 2, CELL, CELL]
    inits = [
        numpy_helper.from_array(boxes, "cell_boxes"),
        numpy_helper.from_array(np.array([0, 3, anchors], dtype=np.int64), "flat_shape"),
        numpy_helper.from_array(np.array([0, 2], dtype=np.int64), "score_channels"),
        numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero"),
    ]
    nodes = [
        # Mean of each channel over each cell: [B, 3, grid, grid].
        helper.make_node("AveragePool", ["images"], ["cell_means"],
                         kernel_shape=[CELL, CELL], strides=[CELL, CELL]),
        helper.make_node("Reshape", ["cell_means", "flat_shape"], ["flat_means"]),
        # Red -> class 0, blue -> class 1: [B, 2, A].
        helper.make_node("Gather", ["flat_means", "score_channels"], ["scores"], axis=1),
        # Broadcast the constant boxes to the batch: zeros [B, 1, A] + [1, 4, A].
        helper.make_node("Slice", ["scores", "s_start", "s_end", "s_axis"], ["one_score"]),
        helper.make_node("Mul", ["one_score", "zero"], ["batch_zeros"]),
        helper.make_node("Add", ["batch_zeros", "cell_boxes"], ["boxes"]),
        helper.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1),
    ]
    if end_to_end:
        # [B, A, 6] rows x1, y1, x2, y2, red score, class 0 (the layout of an export with
        # built-in NMS; here every cell is a row and padding rows score 0).
        corners = np.concatenate([boxes[:, 0:2] - CELL / 2, boxes[:, 0:2] + CELL / 2], axis=1)
        inits[0] = numpy_helper.from_array(corners.astype(np.float32), "cell_boxes")
        nodes[-1] = helper.make_node("Concat", ["boxes", "one_score", "batch_zeros"], ["rows_t"], axis=1)
        nodes.append(helper.make_node("Transpose", ["rows_t"], ["output0"], perm=[0, 2, 1]))
    inits += [
        numpy_helper.from_array(np.array([0], dtype=np.int64), "s_start"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "s_end"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "s_axis"),
    ]
    graph = helper.make_graph(
        nodes,
        "sitcenter_tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info(
            "output0", TensorProto.FLOAT, ["batch", anchors, 6] if end_to_end else ["batch", 6, anchors])],
        initializer=inits,
    )
    model = helper.make_model(graph, producer_name="sitcenter make_tiny.py",
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def main() -> None:
    good = build(64).SerializeToString()
    with open(os.path.join(HERE, "model.onnx"), "wb") as f:
        f.write(good)
    with open(os.path.join(HERE, "invalid", "wrong-shape.onnx"), "wb") as f:
        f.write(build(32).SerializeToString())
    with open(os.path.join(HERE, "invalid", "truncated.onnx"), "wb") as f:
        f.write(good[:100])
    with open(os.path.join(HERE, "end-to-end", "model.onnx"), "wb") as f:
        f.write(build(64, end_to_end=True).SerializeToString())


if __name__ == "__main__":
    main()
