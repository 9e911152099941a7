"""1-D convolutions rewritten as 2-D ones for onnxruntime on the CPU: same outputs."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from rtsvc.onnx_conv2d import conv1d_as_conv2d  # noqa: E402


class ConvZoo(torch.nn.Module):
    """Every 1-D conv flavour SoVITS uses: dilated, grouped, strided, transposed with output
    padding, 1x1, and one weight used twice."""

    def __init__(self) -> None:
        super().__init__()
        self.dilated = torch.nn.Conv1d(6, 8, 5, dilation=3, padding=6)
        self.grouped = torch.nn.Conv1d(8, 8, 4, groups=4, padding=2)
        self.strided = torch.nn.Conv1d(8, 6, 10, stride=5, bias=False)
        self.up = torch.nn.ConvTranspose1d(6, 4, 16, stride=8, padding=4, output_padding=1)
        self.shared = torch.nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.leaky_relu(self.dilated(x), 0.1)
        x = self.strided(self.grouped(x)[..., :-1])
        x = self.up(x)
        return self.shared(torch.tanh(self.shared(x)))


def _session(data: bytes):
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("frames", [40, 97])
def test_rewritten_graph_gives_the_same_output(frames):
    model = ConvZoo().eval()
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (torch.randn(1, 6, 50),), buffer, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {2: "t"}, "y": {2: "t"}}, opset_version=17, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    assert conv1d_as_conv2d(proto) == 6  # five modules, the shared one called twice
    onnx.checker.check_model(proto)
    convs = [n for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    weights = {i.name: tuple(i.dims) for i in proto.graph.initializer}
    assert all(len(weights[n.input[1]]) == 4 for n in convs)
    x = np.random.default_rng(frames).standard_normal((1, 6, frames)).astype(np.float32)
    expected = model(torch.from_numpy(x)).detach().numpy()
    (original,) = _session(buffer.getvalue()).run(None, {"x": x})
    (rewritten,) = _session(proto.SerializeToString()).run(None, {"x": x})
    assert rewritten.shape == expected.shape
    assert np.abs(rewritten - original).max() < 1e-5 and np.abs(rewritten - expected).max() < 1e-4


def test_graph_without_constant_1d_weights_is_left_alone():
    class TwoD(torch.nn.Module):
        def forward(self, x, w):  # the weight is an input, not a constant
            return torch.nn.functional.conv1d(x, w)

    buffer = io.BytesIO()
    torch.onnx.export(TwoD(), (torch.randn(1, 2, 9), torch.randn(3, 2, 3)), buffer, opset_version=17, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    before = proto.SerializeToString()
    assert conv1d_as_conv2d(proto) == 0 and proto.SerializeToString() == before


def test_old_opsets_are_left_alone():
    buffer = io.BytesIO()
    torch.onnx.export(torch.nn.Conv1d(2, 3, 3), (torch.randn(1, 2, 9),), buffer, opset_version=11, dynamo=False)
    proto = onnx.load_from_string(buffer.getvalue())
    assert conv1d_as_conv2d(proto) == 0
