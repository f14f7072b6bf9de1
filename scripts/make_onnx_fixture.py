#!/usr/bin/env python3
"""Write host/tests/data/tiny_vargnet.onnx (opset 18) and tiny_vargnet_op11.onnx (opset 11,
the same weights): a small fixed-group-width network built with the
`onnx` package (not by this project's exporter), so the importer is tested on a file another
tool wrote.  Random weights, fixed seed: rerunning writes the same file.

    pip install onnx numpy && python3 scripts/make_onnx_fixture.py

The graph (3x16x16 image, opset 18, both BN forms torch.onnx.export can write):
  head:  Conv 3x3 3->16 with bias (BN folded), PRelu
  block: Conv 3x3 16->32 grouped, 8 channels per group, bias (folded), PRelu
         Conv 1x1 32->16, BatchNormalization (unfolded)
         SE: GlobalAveragePool, Conv 1x1 16->4 + bias, Relu, Conv 1x1 4->16 + bias,
             Sigmoid, Mul (gate broadcast over H, W)
         Add (residual with the block's input), PRelu
  out:   GlobalAveragePool, Flatten, Gemm 16->8 (transB, bias), ReduceL2 (axes as an input,
         opset 18) + Div
The opset-11 file writes the tail as older exporters do: Identity, Reshape to [1, -1],
MatMul + Add (the bias), ReduceL2 with an axes attribute + Div.
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# Set by build(): the weights' random stream and the initializers so far.
rng = None
inits = []


def const(name, array):
    inits.append(numpy_helper.from_array(np.asarray(array), name))
    return name


def conv_w(name, out_ch, in_per_group, k):
    bound = 1.0 / np.sqrt(in_per_group * k * k)
    return const(name, rng.uniform(-bound, bound, (out_ch, in_per_group, k, k)).astype(np.float32))


def vec(name, n, lo, hi):
    return const(name, rng.uniform(lo, hi, n).astype(np.float32))


def slope(name, c):
    return const(name, rng.uniform(0.2, 0.3, (c, 1, 1)).astype(np.float32))


def build(opset):
    global rng, inits
    rng = np.random.default_rng(2019)
    inits = []
    nodes = [
        helper.make_node("Conv", ["input", conv_w("head.w", 16, 3, 3), vec("head.b", 16, -0.1, 0.1)],
                         ["h1"], name="head.conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("PRelu", ["h1", slope("head.slope", 16)], ["h2"], name="head.prelu"),
        helper.make_node("Conv", ["h2", conv_w("dw.w", 32, 8, 3), vec("dw.b", 32, -0.1, 0.1)],
                         ["d1"], name="block.dw_conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         group=2),
        helper.make_node("PRelu", ["d1", slope("dw.slope", 32)], ["d2"], name="block.dw_prelu"),
        helper.make_node("Conv", ["d2", conv_w("pw.w", 16, 32, 1)], ["p1"], name="block.pw_conv",
                         kernel_shape=[1, 1]),
        helper.make_node("BatchNormalization",
                         ["p1", vec("bn.scale", 16, 0.8, 1.2), vec("bn.bias", 16, -0.1, 0.1),
                          vec("bn.mean", 16, -0.2, 0.2), vec("bn.var", 16, 0.5, 1.5)],
                         ["p2"], name="block.pw_bn", epsilon=1e-5),
        helper.make_node("GlobalAveragePool", ["p2"], ["s1"], name="block.se.pool"),
        helper.make_node("Conv", ["s1", conv_w("se1.w", 4, 16, 1), vec("se1.b", 4, -0.1, 0.1)],
                         ["s2"], name="block.se.fc1", kernel_shape=[1, 1]),
        helper.make_node("Relu", ["s2"], ["s3"], name="block.se.relu"),
        helper.make_node("Conv", ["s3", conv_w("se2.w", 16, 4, 1), vec("se2.b", 16, -0.1, 0.1)],
                         ["s4"], name="block.se.fc2", kernel_shape=[1, 1]),
        helper.make_node("Sigmoid", ["s4"], ["s5"], name="block.se.sigmoid"),
        helper.make_node("Mul", ["p2", "s5"], ["m1"], name="block.se.mul"),
        helper.make_node("Add", ["h2", "m1"], ["a1"], name="block.add"),
        helper.make_node("PRelu", ["a1", slope("out.slope", 16)], ["a2"], name="block.prelu"),
        helper.make_node("GlobalAveragePool", ["a2"], ["g1"], name="out.pool"),
    ]
    fc_w = rng.uniform(-0.25, 0.25, (8, 16)).astype(np.float32)
    fc_b = rng.uniform(-0.1, 0.1, 8).astype(np.float32)
    if opset >= 13:
        nodes += [
            helper.make_node("Flatten", ["g1"], ["f1"], name="out.flatten", axis=1),
            helper.make_node("Gemm", ["f1", const("fc.w", fc_w), const("fc.b", fc_b)],
                             ["e1"], name="out.fc", transB=1),
            helper.make_node("ReduceL2", ["e1", const("axes", np.array([1], dtype=np.int64))],
                             ["n1"], name="out.norm", keepdims=1),
        ]
    else:
        nodes += [
            helper.make_node("Identity", ["g1"], ["g2"], name="out.identity"),
            helper.make_node("Reshape", ["g2", const("shape", np.array([1, -1], dtype=np.int64))],
                             ["f1"], name="out.flatten"),
            helper.make_node("MatMul", ["f1", const("fc.w", fc_w.T.copy())], ["e0"], name="out.fc"),
            helper.make_node("Add", ["e0", const("fc.b", fc_b)], ["e1"], name="out.fc_bias"),
            helper.make_node("ReduceL2", ["e1"], ["n1"], name="out.norm", axes=[1], keepdims=1),
        ]
    nodes.append(helper.make_node("Div", ["e1", "n1"], ["embedding"], name="out.l2_norm"))

    graph = helper.make_graph(
        nodes, "tiny_vargnet",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 8])],
        initializer=inits,
    )
    model = helper.make_model(graph, producer_name="onnx-helper",
                              opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset >= 13 else 6
    onnx.checker.check_model(model, full_check=True)
    name = "tiny_vargnet.onnx" if opset == 18 else f"tiny_vargnet_op{opset}.onnx"
    out = os.path.join(os.path.dirname(__file__), "..", "host", "tests", "data", name)
    onnx.save(model, out)
    print(f"wrote {os.path.normpath(out)}: {len(nodes)} nodes, {os.path.getsize(out)} bytes")


for opset in (18, 11):
    build(opset)
