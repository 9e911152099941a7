"""DrawMemo: a reseeded call's draws are replayed exactly, and only for the same state and shapes."""

from __future__ import annotations

import torch

from rtsvc.models.draws import DrawMemo, RandomDraws


def _draw(generator: torch.Generator, n: int) -> torch.Tensor:
    draws = RandomDraws(generator)
    return torch.cat([draws.normal((n,)), draws.uniform((3,))])


def test_a_repeated_state_replays_the_draws_and_leaves_the_generator_where_drawing_would():
    memo = DrawMemo()
    made = []

    def make(gen, n):
        made.append(n)
        return _draw(gen, n)

    g = torch.Generator().manual_seed(7)
    first = memo.draw(g, (100,), lambda: make(g, 100))
    after_first = g.get_state()
    g2 = torch.Generator().manual_seed(7)  # reseeded like upstream: same state as before `first`
    again = memo.draw(g2, (100,), lambda: make(g2, 100))
    assert made == [100] and again is first
    assert torch.equal(g2.get_state(), after_first)  # as if it had drawn
    assert torch.equal(torch.randn(5, generator=g2), torch.randn(5, generator=torch.Generator().set_state(after_first)))
    fresh = _draw(torch.Generator().manual_seed(7), 100)
    assert torch.equal(first, fresh)


def test_another_seed_state_or_shape_draws_afresh():
    memo = DrawMemo()
    g = torch.Generator().manual_seed(7)
    a = memo.draw(g, (100,), lambda: _draw(g, 100))
    b = memo.draw(g, (100,), lambda: _draw(g, 100))  # generator moved on: a new state
    assert not torch.equal(a, b)
    g = torch.Generator().manual_seed(8)
    c = memo.draw(g, (100,), lambda: _draw(g, 100))
    assert torch.equal(c, _draw(torch.Generator().manual_seed(8), 100))
    g = torch.Generator().manual_seed(8)
    d = memo.draw(g, (50,), lambda: _draw(g, 50))
    assert d.shape == (53,) and torch.equal(d, _draw(torch.Generator().manual_seed(8), 50))
