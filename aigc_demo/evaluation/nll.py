"""VAE likelihoods in nats: ELBO and the importance-weighted (IWAE, Burda et al. 2016) estimate.

log p(x) >= log (1/k) sum_i p(x, z_i) / q(z_i|x),  z_i ~ q(z|x); the bound tightens as k grows,
and with k = 1000+ it is the standard "test NLL" figure. Test digits are binarized once with a
fixed seed (stochastic binarization: pixel = 1 with probability grey/255), the scheme training uses.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from aigc_demo.models.vae import bernoulli_log_prob, gaussian_log_prob, vae_kl

BINARIZATION_SEED = 0


def binarize_fixed(images_uint8: torch.Tensor, seed: int = BINARIZATION_SEED) -> torch.Tensor:
    """uint8 (N, 1, 28, 28) -> float {0, 1}, one fixed stochastic draw made on the CPU (same everywhere)."""
    gen = torch.Generator().manual_seed(seed)
    grey = images_uint8.cpu().float() / 255.0
    return torch.bernoulli(grey, generator=gen)


@torch.no_grad()
def elbo_terms(model: Any, x: torch.Tensor, seed: int = 0, batch_size: int = 1000) -> dict[str, float]:
    """Single-sample ELBO with fixed noise: {'elbo', 'recon', 'kl'} in nats per digit (recon, kl >= 0)."""
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    recon_sum = kl_sum = 0.0
    for start in range(0, len(x), batch_size):
        xb = x[start:start + batch_size]
        mean, logvar = model.encode(xb)
        z = mean + torch.randn(mean.shape, device=x.device, generator=gen) * (0.5 * logvar).exp()
        recon_sum += -bernoulli_log_prob(model.decode(z).float(), xb).sum().item()
        kl_sum += vae_kl(mean.float(), logvar.float()).item() * len(xb)
    n = len(x)
    return {"elbo": -(recon_sum + kl_sum) / n, "recon": recon_sum / n, "kl": kl_sum / n}


@torch.no_grad()
def iwae_nll(model: Any, x: torch.Tensor, k: int = 1000, seed: int = 0, images_per_batch: int = 20,
             samples_per_pass: int = 20000) -> dict[str, float]:
    """IWAE estimate of -log p(x) with k importance samples, plus ELBO, recon and KL, in nats per digit.

    ELBO here is the mean of log w over all k samples (an unbiased ELBO estimate), recon the mean
    of -log p(x|z) under q, KL the analytic KL(q(z|x) || p(z)).
    """
    model.eval()
    gen = torch.Generator(device=x.device).manual_seed(seed)
    k_chunk = max(1, min(k, samples_per_pass // max(images_per_batch, 1)))
    nll_sum = elbo_sum = recon_sum = kl_sum = 0.0
    for start in range(0, len(x), images_per_batch):
        xb = x[start:start + images_per_batch]  # (m, 1, 28, 28)
        m = len(xb)
        mean, logvar = model.encode(xb)
        mean, logvar = mean.float(), logvar.float()  # (m, z)
        std = (0.5 * logvar).exp()
        log_w_parts, recon_parts = [], []
        for done in range(0, k, k_chunk):
            kc = min(k_chunk, k - done)
            z = mean + std * torch.randn((kc, *mean.shape), device=x.device, generator=gen)  # (kc, m, z)
            logits = model.decode(z.reshape(kc * m, -1).to(next(model.parameters()).dtype)).float()
            log_px = bernoulli_log_prob(logits, xb.repeat(kc, 1, 1, 1)).view(kc, m)
            log_w = log_px + gaussian_log_prob(z) - gaussian_log_prob(z, mean, logvar)  # (kc, m)
            log_w_parts.append(log_w)
            recon_parts.append(-log_px)
        log_w = torch.cat(log_w_parts)  # (k, m)
        nll_sum += -(torch.logsumexp(log_w, 0) - math.log(k)).sum().item()
        elbo_sum += log_w.mean(0).sum().item()
        recon_sum += torch.cat(recon_parts).mean(0).sum().item()
        kl_sum += vae_kl(mean, logvar).item() * m
    n = len(x)
    return {"nll": nll_sum / n, "elbo": elbo_sum / n, "recon": recon_sum / n, "kl": kl_sum / n, "k": k, "n": n}
