"""VITS / so-vits-svc 4.1 training losses (LSGAN adversarial, feature matching, KL).

Discriminator outputs are lists (one entry per sub-discriminator) of (B, frames) scores;
feature maps are lists of lists of activations. Every loss is computed in float32.
"""

from __future__ import annotations

import torch

#: Feature-matching loss weight (VITS value).
FEATURE_MATCHING_WEIGHT = 2.0


def discriminator_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN: sum over sub-discriminators of mean((1 - D(real))^2) + mean(D(fake)^2)."""
    total = torch.zeros((), device=real_scores[0].device)
    for real, fake in zip(real_scores, fake_scores):
        total = total + torch.mean((1 - real.float()) ** 2) + torch.mean(fake.float() ** 2)
    return total


def generator_adversarial_loss(fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN generator side: sum of mean((1 - D(fake))^2)."""
    total = torch.zeros((), device=fake_scores[0].device)
    for fake in fake_scores:
        total = total + torch.mean((1 - fake.float()) ** 2)
    return total


def feature_matching_loss(real_maps: list[list[torch.Tensor]], fake_maps: list[list[torch.Tensor]]) -> torch.Tensor:
    """FEATURE_MATCHING_WEIGHT * sum over every layer of mean |real - fake| (real detached)."""
    total = torch.zeros((), device=real_maps[0][0].device)
    for real_layers, fake_layers in zip(real_maps, fake_maps):
        for real, fake in zip(real_layers, fake_layers):
            total = total + torch.mean(torch.abs(real.float().detach() - fake.float()))
    return total * FEATURE_MATCHING_WEIGHT


def kl_loss(z_p: torch.Tensor, logs_q: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """VITS KL term (so-vits-svc 4.1-Stable), averaged over unmasked elements.

    z_p, logs_q, m_p, logs_p: (B, inter, T); mask: (B, 1, T). Per element:
    logs_p - logs_q - 1/2 + (z_p - m_p)^2 exp(-2 logs_p) / 2.
    (A later upstream branch adds log(2 pi sigma_p^2) / 2 with a masked sigma, which is NaN on
    padded frames; it is deliberately not used.)
    """
    z_p, logs_q, m_p, logs_p, mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, mask))
    kl = logs_p - logs_q - 0.5
    kl = kl + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * mask) / torch.sum(mask)
