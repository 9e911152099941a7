"""Stage 7, ``compress``: a release file from a training checkpoint (so-vits-svc
``compress_model.py`` format): the posterior encoder ``enc_q.*`` (training only) is dropped,
the optimizer state is replaced by a fresh AdamW state (no moments), iteration is 0, and the
weights are optionally cast to float16. The result loads in rtsvc and so-vits-svc for inference.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rtsvc.errors import ModelFileError

from .checkpoints import read_checkpoint, save_atomic

#: State-dict prefix of the posterior encoder, used only in training.
POSTERIOR_PREFIX = "enc_q."
#: Optimizer hyper-parameters written into the release file (so-vits-svc's values).
RELEASE_BETAS = (0.8, 0.99)
RELEASE_EPS = 1e-9


def compress_checkpoint(src: Path, dst: Path, half: bool = False) -> dict[str, int]:
    """Write the release file; returns counts {"kept": n, "dropped": n}."""
    data = read_checkpoint(src)
    state = data["model"]
    if not any(k.startswith(POSTERIOR_PREFIX) for k in state):
        raise ModelFileError(f"{src}: has no enc_q.* weights; it is already a release file.", "compress the G_<step>.pth training checkpoint.")
    kept = {k: (v.half() if half and v.is_floating_point() else v.clone()) for k, v in state.items() if not k.startswith(POSTERIOR_PREFIX)}
    dummy = [torch.nn.Parameter(torch.zeros(1)) for _ in state]
    optimizer = torch.optim.AdamW(dummy, float(data.get("learning_rate", 1e-4)), betas=RELEASE_BETAS, eps=RELEASE_EPS)
    save_atomic({"model": kept, "iteration": 0, "optimizer": optimizer.state_dict(),
                 "learning_rate": float(data.get("learning_rate", 1e-4))}, dst)
    return {"kept": len(kept), "dropped": len(state) - len(kept)}
