"""FCPE's network in ONNX Runtime: the lean FCPE of the live pitch path.

The live pitch cache calls FCPE every block on a short segment (about 9 frames of 10 ms at a
20 ms block). At that size torch spends most of a call in per-operator overhead and its
unoptimised 3-tap convolution path: 16.7 ms per call on one core of the 2-core CI machine,
against 6.2 ms for the same graph in ONNX Runtime (4.2 vs 12.8 ms on two cores; measured by
``benchmarks/pitch.py``). The results agree to float rounding (tests: < 0.01 cent).

Only the network (log-mel frames -> salience) runs in ONNX Runtime; the mel front end and the
local-argmax decoder stay torch (cheap). The graph is exported from the loaded weights in memory
once per process (~1 s, TorchScript exporter) and run by a one-thread CPU session, so it never
competes with the audio callback for a second core. Needs the ``onnx`` extra (onnx and
onnxruntime); without it the live path keeps torch FCPE.
"""

from __future__ import annotations

import importlib.util
import io
import warnings
from functools import lru_cache

import torch

from rtsvc.models.fcpe import Fcpe

#: Frames of the example input traced at export (any length runs).
EXAMPLE_FRAMES = 20
#: ONNX opset of the graph (the same as rtsvc.onnx_export's).
OPSET = 17


@lru_cache(maxsize=1)
def onnx_fcpe_available() -> bool:
    """True when onnx (to export) and onnxruntime (to run) are installed (checked once)."""
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


class OnnxFcpe(torch.nn.Module):
    """An :class:`~rtsvc.models.fcpe.Fcpe` whose network runs in ONNX Runtime on the CPU.

    forward(audio: (B, n) float32 at 16 kHz, threshold) -> (B, n // 160 + 1) float32 f0 in Hz
    (0 = unvoiced), like ``Fcpe.forward``. ``fcpe`` stays a submodule (front end, decoder, and
    ``parameters()`` for callers that ask which device the model is on).
    """

    def __init__(self, fcpe: Fcpe, threads: int = 1) -> None:
        super().__init__()
        import onnxruntime

        self.fcpe = fcpe.cpu().eval()
        mel = torch.zeros(1, EXAMPLE_FRAMES, fcpe.network.config.n_mels)
        buffer = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer notes about shape-derived ints are expected
            torch.onnx.export(self.fcpe.network, (mel,), buffer, input_names=["mel"], output_names=["salience"],
                              dynamic_axes={"mel": {1: "frames"}, "salience": {1: "frames"}},
                              opset_version=OPSET, dynamo=False, do_constant_folding=True)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = onnxruntime.InferenceSession(buffer.getvalue(), sess_options=options,
                                                    providers=["CPUExecutionProvider"])

    @property
    def sample_rate(self) -> int:
        return self.fcpe.sample_rate

    @property
    def hop_length(self) -> int:
        return self.fcpe.hop_length

    def forward(self, audio: torch.Tensor, threshold: float = 0.05) -> torch.Tensor:
        with torch.inference_mode():
            mel = self.fcpe.front_end(audio.float().cpu())
        (salience,) = self.session.run(None, {"mel": mel.numpy()})
        with torch.inference_mode():
            return self.fcpe.network.decode_local_argmax(torch.from_numpy(salience), threshold)
