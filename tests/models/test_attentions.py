"""Relative-position attention helpers against their entry-by-entry definitions."""

import pytest
import torch

from rtsvc.models.attentions import MultiHeadAttention

WINDOW = 4


@pytest.mark.parametrize("length", [1, 2, 4, 5, 9, 10, 23])
def test_relative_absolute_conversions_match_their_definitions(length):
    attention = MultiHeadAttention(8, 8, 2, window=WINDOW)
    gen = torch.Generator().manual_seed(length)
    rel = torch.randn(2, 3, length, 2 * WINDOW + 1, generator=gen)
    p = torch.randn(2, 3, length, length, generator=gen)
    absolute = torch.zeros(2, 3, length, length)
    relative = torch.zeros(2, 3, length, 2 * WINDOW + 1)
    for i in range(length):
        for j in range(length):
            if abs(j - i) <= WINDOW:
                absolute[..., i, j] = rel[..., i, j - i + WINDOW]
        for r in range(2 * WINDOW + 1):
            if 0 <= i + r - WINDOW < length:
                relative[..., i, r] = p[..., i, i + r - WINDOW]
    assert torch.equal(attention._relative_to_absolute(rel, length), absolute)
    assert torch.equal(attention._absolute_to_relative(p, length), relative)
