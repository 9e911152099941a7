"""CUDA graphs for the live path: replay a whole network call as one graph launch.

A full-size voice block on a GPU is thousands of small kernels (encoder, synthesizer,
NSF-HiFiGAN, FCPE). Launched one by one from Python that costs milliseconds of CPU time per
block, more than the kernels themselves. The live engine calls every network with the same
shapes block after block, which is what a CUDA graph needs: record the kernels once, then
replay them with one launch::

    call 1, 2 with shapes S  ->  eager (ordinary PyTorch; also what render's varied shapes get)
    call 3 with shapes S     ->  copy inputs into static buffers, warm up, capture graph G(S)
    call n with shapes S     ->  copy inputs into G(S)'s buffers, replay, read its output

:class:`GraphedCall` does this for any function of tensors whose kernels depend only on the
input shapes (no host synchronisation, no data-dependent shapes). Capture failures are caught:
the call falls back to eager for good and :attr:`GraphedCall.failure` says why (shown in the
voice's status facts). Calls are serialised by a lock (a voice loading beside the running one
warms up the shared FCPE from another thread) and return a copy of the graph's output buffer.

Users: :class:`GraphSynthesizer` (the SoVITS synthesizer with the ONNX graph's input contract,
so non-deterministic runs take their random draws as inputs), :class:`GraphContentEncoder`
(ContentVec / HuBERT) and :class:`GraphedFcpe` (the FCPE pitch estimator). The engine's
warm-up (silent calls of the live window's shapes, see :meth:`rtsvc.voice.Voice.warm_up`)
captures the graphs before audio flows.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any, Callable

import numpy as np
import torch

from rtsvc.ort_models import HostZeros, OrtSynthesizer
from rtsvc.encoders import TorchContentEncoder

#: Calls with one input signature that run eagerly before that signature is captured.
EAGER_CALLS_BEFORE_CAPTURE = 2
#: Eager runs on a side stream before capture (cuDNN / cuBLAS / cuFFT plans, allocator warm-up).
CAPTURE_WARM_UP_RUNS = 2
#: Graphs kept per GraphedCall (least recently used dropped first; each holds its own memory).
MAX_GRAPHS = 4
#: Input signatures counted before capture (bounded so that render's varied shapes cannot grow it).
MAX_COUNTED_SIGNATURES = 64


def _signature(inputs: tuple[torch.Tensor, ...]) -> tuple:
    return tuple((tuple(x.shape), x.dtype) for x in inputs)


class _Graph:
    def __init__(self, graph: torch.cuda.CUDAGraph, inputs: list[torch.Tensor], output: torch.Tensor) -> None:
        self.graph, self.inputs, self.output = graph, inputs, output


class GraphedCall:
    """``fn(*inputs) -> tensor`` on ``device``, replayed from a CUDA graph per input signature.

    inputs: tensors (any device; copied into the graph's static buffers, which keep their
    dtype). Returns a new tensor on ``device``.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], device: str | torch.device) -> None:
        self.fn = fn
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ValueError(f"CUDA graphs need a CUDA device, got {self.device}")
        self.graphs: OrderedDict[tuple, _Graph] = OrderedDict()
        self.calls: OrderedDict[tuple, int] = OrderedDict()
        self.failure: str | None = None
        self.replays = 0
        self._lock = threading.Lock()

    def __call__(self, *inputs: torch.Tensor) -> torch.Tensor:
        with self._lock:
            return self._call(inputs)

    def _call(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        key = _signature(inputs)
        entry = self.graphs.get(key)
        if entry is None:
            if self.failure is not None or not self._due(key):
                return self.fn(*(x.to(self.device, non_blocking=True) for x in inputs))
            try:
                entry = self._capture(inputs)
            except Exception as exc:  # noqa: BLE001 - any capture problem means: stay eager
                self.failure = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0][:160] if str(exc).strip() else ''}"
                self.graphs.clear()
                torch.cuda.synchronize(self.device)
                return self.fn(*(x.to(self.device, non_blocking=True) for x in inputs))
        self.graphs.move_to_end(key)
        for buffer, x in zip(entry.inputs, inputs):
            buffer.copy_(x, non_blocking=True)
        entry.graph.replay()
        self.replays += 1
        return entry.output.clone()

    def _due(self, key: tuple) -> bool:
        count = self.calls.pop(key, 0) + 1
        self.calls[key] = count
        while len(self.calls) > MAX_COUNTED_SIGNATURES:
            self.calls.popitem(last=False)
        return count > EAGER_CALLS_BEFORE_CAPTURE

    def _capture(self, inputs: tuple[torch.Tensor, ...]) -> _Graph:
        static = [torch.empty(x.shape, dtype=x.dtype, device=self.device) for x in inputs]
        for buffer, x in zip(static, inputs):
            buffer.copy_(x)
        stream = torch.cuda.Stream(self.device)
        stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.inference_mode(), torch.cuda.stream(stream):
            for _ in range(CAPTURE_WARM_UP_RUNS):
                self.fn(*static)
        torch.cuda.current_stream(self.device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        # thread_local: CUDA work of other threads (a voice loading beside the running one) must
        # neither break nor be broken by this capture.
        with torch.inference_mode(), torch.cuda.graph(graph, capture_error_mode="thread_local"):
            output = self.fn(*static)
        if len(self.graphs) >= MAX_GRAPHS:
            self.graphs.popitem(last=False)
        entry = _Graph(graph, static, output)
        self.graphs[_signature(inputs)] = entry
        return entry

    def describe(self) -> str:
        """Status text: 'on (<n> captured)' or 'off: <why capture failed>'."""
        return f"off: {self.failure}" if self.failure else f"on ({len(self.graphs)} captured)"


def cuda_graphs_supported(device: str | torch.device) -> bool:
    """True when ``device`` is a CUDA device this PyTorch can capture graphs on."""
    dev = torch.device(device)
    return dev.type == "cuda" and torch.cuda.is_available() and hasattr(torch.cuda, "CUDAGraph")


# -- the SoVITS synthesizer ---------------------------------------------------------------------
class _GraphRunner:
    """Runs the synthesizer's export wrapper (models.onnx_wrappers.SynthesizerForExport) on
    named feeds through a :class:`GraphedCall` (the contract of rtsvc.ort_models._Runner)."""

    provider = "torch CUDA graphs"

    def __init__(self, wrapper: torch.nn.Module, names: list[str], device: str) -> None:
        self.names = names
        self.call = GraphedCall(lambda *xs: wrapper(*xs), device)
        self.zeros = HostZeros()  # all-zero inputs (deterministic runs)

    def run(self, feeds: dict[str, Any], output: str) -> np.ndarray:
        tensors = tuple(torch.from_numpy(np.ascontiguousarray(feeds[name])) for name in self.names)
        with torch.inference_mode():
            return self.call(*tensors).float().cpu().numpy()


class GraphSynthesizer(OrtSynthesizer):
    """The SoVITS synthesizer behind the ``infer`` contract of :class:`OrtSynthesizer`, run by
    PyTorch (fp32 or fp16 on CUDA) as CUDA graphs. Its graph is the ONNX export wrapper, so the
    random draws are inputs and seeded (non-deterministic) runs replay too; the f0 predictor
    (auto f0) runs on the torch model. Build with :meth:`from_torch`."""

    @classmethod
    def from_torch(cls, model, choice, *, speakers: tuple[str, ...] | None = None, speech_encoder: str = "",
                   unit_interpolate_mode: str = "nearest") -> "GraphSynthesizer":
        """Wrap ``model`` (SynthesizerTrn, inference-ready, on ``choice.device``). A model whose
        wrapper cannot run (checked on a few frames now) raises; the caller keeps it plain."""
        from rtsvc.models.onnx_wrappers import SynthesizerForExport
        from rtsvc.onnx_export import example_synth_inputs, synthesizer_facts

        # no ``keep`` input: a data-dependent slice cannot be replayed; the tail is sliced after
        facts = replace(synthesizer_facts(model, speakers=speakers, speech_encoder=speech_encoder,
                                          unit_interpolate_mode=unit_interpolate_mode), keep_input=False)
        wrapper = SynthesizerForExport(model, speaker_mix=facts.speaker_mix, source_draws=True).eval()
        names = wrapper.input_names()
        probe = example_synth_inputs(facts, frames=PROBE_FRAMES)
        with torch.inference_mode():
            out = wrapper(*(probe[name].to(choice.device) for name in names))
        if out.shape != (1, 1, PROBE_FRAMES * facts.hop_length) or not bool(torch.isfinite(out).all()):
            raise RuntimeError(f"the synthesizer's graph wrapper gave {tuple(out.shape)} / non-finite samples")
        return cls(None, facts, choice, torch_model=model, onnx_source=None,
                   runner=_GraphRunner(wrapper, names, choice.device))

    def describe(self) -> dict[str, Any]:
        return {**self.choice.describe(), "provider": self.provider, "cuda_graphs": self.runner.call.describe()}


#: Frames of the load-time check that the synthesizer's graph wrapper runs.
PROBE_FRAMES = 8


# -- content encoders and FCPE -----------------------------------------------------------------
class GraphContentEncoder(TorchContentEncoder):
    """A torch ContentVec / HuBERT encoder on CUDA whose repeated input lengths replay CUDA
    graphs (same ``encode`` contract). Build with :meth:`from_encoder`."""

    @classmethod
    def from_encoder(cls, encoder: TorchContentEncoder) -> "GraphContentEncoder":
        return cls(encoder.spec, encoder.model, encoder.device, encoder.path)

    def __init__(self, spec, model, device: str, path) -> None:
        from rtsvc.models.hubert import UnitsForExport

        super().__init__(spec, model, device, path)
        units = UnitsForExport(self.model, self.output_layer, self.spec.final_proj).eval()
        self.call = GraphedCall(lambda source: units(source), device)

    @property
    def provider(self) -> str:
        return f"torch {self.device} CUDA graphs {self.call.describe()}"

    def _features(self, wave: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return self.call(wave.reshape(1, 1, -1))


class GraphedFcpe(torch.nn.Module):
    """An FCPE model (rtsvc.models.fcpe.Fcpe) on CUDA whose calls replay CUDA graphs per input
    length (one :class:`GraphedCall` per threshold); same forward contract ((B, n) 16 kHz ->
    (B, n // hop + 1) Hz).

    stream: a CUDA stream of its own. rtsvc.pitch runs FCPE and its host copies on it, so pitch
    runs beside the content encoder the live engine has queued on the default stream (see
    rtsvc.voice.Voice.begin_window) and waits for FCPE alone::

        default stream:  [encoder graph ...........]          [synthesizer graph]
        FCPE stream:       [FCPE graph] -> f0 to host
        host:            queue encoder, queue FCPE, wait f0, pitch work, wait units, queue synth
    """

    #: Thresholds with their own graphs (least recently used dropped first).
    MAX_THRESHOLDS = 4

    def __init__(self, fcpe: torch.nn.Module) -> None:
        super().__init__()
        self.fcpe = fcpe
        self.device = next(fcpe.parameters()).device
        self.stream = torch.cuda.Stream(self.device)
        self.stream.wait_stream(torch.cuda.current_stream(self.device))  # the weights' copies are done first
        self.calls: OrderedDict[float, GraphedCall] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def replays(self) -> int:
        return sum(call.replays for call in list(self.calls.values()))

    def _call_for(self, threshold: float) -> GraphedCall:
        with self._lock:
            call = self.calls.pop(threshold, None)
            if call is None:
                fcpe = self.fcpe
                call = GraphedCall(lambda audio: fcpe(audio, threshold), self.device)
            self.calls[threshold] = call
            while len(self.calls) > self.MAX_THRESHOLDS:
                self.calls.popitem(last=False)
            return call

    def forward(self, audio: torch.Tensor, threshold: float) -> torch.Tensor:
        call = self._call_for(float(threshold))
        with torch.inference_mode():
            return call(audio)


def graphed_backend(model, encoder, choice, *, speakers: tuple[str, ...] | None = None, speech_encoder: str = "",
                    unit_interpolate_mode: str = "nearest"):
    """(synthesizer, encoder) replaying CUDA graphs (rtsvc.cuda_graphs); a synthesizer whose
    graph wrapper does not run stays plain torch, with one warning that says why."""
    import warnings

    try:
        synth = GraphSynthesizer.from_torch(model, choice, speakers=speakers, speech_encoder=speech_encoder,
                                            unit_interpolate_mode=unit_interpolate_mode)
    except Exception as exc:  # noqa: BLE001 - the plain model still works
        warnings.warn(f"CUDA graphs are off for this voice ({type(exc).__name__}: {exc}); it runs eagerly.", stacklevel=3)
        synth = model
    if isinstance(encoder, TorchContentEncoder) and torch.device(encoder.device).type == "cuda":
        encoder = GraphContentEncoder.from_encoder(encoder)
    return synth, encoder
