"""Random draws of the SoVITS inference path, taken in so-vits-svc's order.

so-vits-svc draws (1) the prior noise (B, inter, T), (2) the initial harmonic phases (B, 9),
(3) the sine-bank noise (B, T*hop, 9) and (4) a noise-branch source that is never used. With a
``torch.Generator`` seeded like upstream (52468 by default) and draws 1-3 taken here in that
order and shape, a CPU run reproduces upstream's default (noisy) output.
"""

from __future__ import annotations

import torch

#: so-vits-svc's default inference seed.
DEFAULT_SEED = 52468


class RandomDraws:
    """Normal/uniform float32 draws from ``generator`` (on the generator's device), or from
    torch's global RNG on ``device`` when ``generator`` is None."""

    def __init__(self, generator: torch.Generator | None, device: torch.device | str = "cpu") -> None:
        self.generator = generator
        self.device = torch.device(generator.device) if generator is not None else torch.device(device)

    def normal(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.randn(shape, generator=self.generator, device=self.device, dtype=torch.float32)

    def uniform(self, shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator, device=self.device, dtype=torch.float32)


def seeded_draws(seed: int = DEFAULT_SEED, device: str = "cpu") -> RandomDraws:
    """Draws from a fresh generator seeded with ``seed`` (upstream reseeds before every call)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    return RandomDraws(gen)
