"""Rewrite an ONNX graph's 1-D convolutions as 2-D ones of height 1, for onnxruntime on the CPU.

onnxruntime's fast CPU convolutions (MLAS's NCHWc kernels, which its layout optimizer switches
to) exist for 2-D convolutions only; a 1-D ``Conv`` goes through a slower general path. SoVITS,
NSF-HiFiGAN and ContentVec are all 1-D. Each 1-D ``Conv`` / ``ConvTranspose`` whose weight is a
constant becomes::

    x (N, C, T) -> Unsqueeze(axis 2) -> (N, C, 1, T) -> Conv2d, kernel (1, k) -> Squeeze(axis 2) -> (N, C', T')

with the weight reshaped to (..., 1, k) and strides / dilations / pads / output_padding given a
height of 1 and no padding in height. The arithmetic is the same (outputs agree to float rounding).

Measured on the full-size synthesizer (2 threads): the convolutions themselves take ~25% less
time, but onnxruntime reorders each one's input and output to and from its blocked layout (it
does so even when the tensors between two convolutions are kept 4-D, because the leaky ReLUs and
residual adds between them are not done in that layout), so a whole run is ~7% faster.
"""

from __future__ import annotations

from typing import Any

CONV_OPS = ("Conv", "ConvTranspose")
#: Squeeze / Unsqueeze take their axes as an input from this opset on (the form written here).
MIN_OPSET = 13
#: Name of the shared (int64 [2]) axes constant of the inserted Unsqueeze / Squeeze nodes.
AXES_NAME = "rtsvc_conv2d_axis"


def _attributes_2d(node, helper) -> list | None:
    """The node's attributes with a height of 1 added, or None if it has one this cannot handle."""
    new = []
    for attr in node.attribute:
        values = list(helper.get_attribute_value(attr)) if attr.type == attr.INTS else None
        if attr.name in ("kernel_shape", "strides", "dilations", "output_padding"):
            if len(values) != 1:
                return None
            fill = 0 if attr.name == "output_padding" else 1
            new.append(helper.make_attribute(attr.name, [fill, values[0]]))
        elif attr.name == "pads":
            if len(values) != 2:
                return None
            new.append(helper.make_attribute("pads", [0, values[0], 0, values[1]]))
        elif attr.name == "output_shape":
            return None
        else:
            new.append(attr)
    return new


def conv1d_as_conv2d(model: Any) -> int:
    """Rewrite ``model`` (an onnx.ModelProto, changed in place) as the module docstring says.
    Returns how many convolutions were rewritten. Convolutions whose weight is not a 3-D
    initializer used by convolutions only are left as they are, and so is a graph below opset
    :data:`MIN_OPSET`."""
    from onnx import helper, numpy_helper

    opset = max((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        return 0
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    graph_inputs = {value.name for value in graph.input}
    users: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            users.setdefault(name, []).append(node)

    def rewritable(node) -> bool:
        return node.op_type in CONV_OPS and _attributes_2d(node, helper) is not None

    def convertible(node) -> bool:
        weight = initializers.get(node.input[1]) if node.op_type in CONV_OPS and len(node.input) > 1 else None
        return (weight is not None and len(weight.dims) == 3 and weight.name not in graph_inputs
                and all(rewritable(user) for user in users[weight.name]))

    targets = {id(node) for node in graph.node if convertible(node)}
    if not targets:
        return 0
    reshaped: set[str] = set()
    nodes = []
    for index, node in enumerate(graph.node):
        if id(node) not in targets:
            nodes.append(node)
            continue
        attributes = _attributes_2d(node, helper)
        del node.attribute[:]
        node.attribute.extend(attributes)
        weight = initializers[node.input[1]]
        if weight.name not in reshaped:
            array = numpy_helper.to_array(weight)
            weight.CopyFrom(numpy_helper.from_array(array.reshape(array.shape[0], array.shape[1], 1, array.shape[2]),
                                                    weight.name))
            reshaped.add(weight.name)
        x, y = node.input[0], node.output[0]
        x4, y4 = f"{x}_rtsvc_2d_in{index}", f"{y}_rtsvc_2d"
        nodes.append(helper.make_node("Unsqueeze", [x, AXES_NAME], [x4], name=f"rtsvc_unsqueeze_{index}"))
        node.input[0] = x4
        node.output[0] = y4
        nodes.append(node)
        nodes.append(helper.make_node("Squeeze", [y4, AXES_NAME], [y], name=f"rtsvc_squeeze_{index}"))
    import numpy as np

    graph.initializer.append(numpy_helper.from_array(np.array([2], dtype=np.int64), AXES_NAME))
    del graph.node[:]
    graph.node.extend(nodes)
    # the value_info shapes of the rewritten tensors are stale; onnxruntime infers its own
    del graph.value_info[:]
    return len(targets)

