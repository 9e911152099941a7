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


class DrawMemo:
    """The last call's draws, replayed when the next call starts from the same generator state
    and asks for the same shapes.

    Upstream reseeds before every call, so the live path asks for identical draws block after
    block (~50k normals per 23 ms block at 44.1 kHz: ~0.3 ms of CPU). A hit returns the stored
    values and moves ``generator`` to the state the draws left it in, exactly as drawing again
    would; any other state or shape draws afresh. The caller must not write into the values.
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._value = None
        self._end_state: torch.Tensor | None = None

    def draw(self, generator: torch.Generator, key: tuple, make):
        """``make()``'s result (it draws from ``generator``) for this generator state and ``key``
        (the shapes and scales the draws depend on)."""
        full_key = (bytes(generator.get_state().numpy()), key)
        if full_key == self._key:
            generator.set_state(self._end_state)
            return self._value
        value = make()
        self._key, self._value, self._end_state = full_key, value, generator.get_state()
        return value
