"""Train the convolutional VAE: `python -m aigc_demo train vae --latent-dim 32 --data-dir DIR --out weights/NAME`.

Data: stochastic binarization, redrawn for every batch (each pixel is 1 with probability equal to
its grey level): the model sees the same binarization scheme as the test set, never the same
binary image twice, and overfits less. Loss = reconstruction (Bernoulli NLL summed over pixels)
+ kl_weight * KL, with the KL weight warmed up from 0 over the first `kl_warmup` of training.
`--recon mse` swaps the reconstruction term for the squared error of the decoded pixel
probabilities (the Lab compares the two); `neg_elbo` is then that objective plus the KL.

`--init-from FOLDER` starts from a weights folder (weights and architecture): fine-tuning, the
Fine-tune tab's jobs included (they add a FinetuneOrigin, which changes only the card).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigc_demo.data.idx import DigitsData, is_npz
from aigc_demo.data.images import preview_grid
from aigc_demo.evaluation.eval_vae import write_latent_scatter, write_vae_sample
from aigc_demo.evaluation.nll import binarize_fixed, elbo_terms
from aigc_demo.errors import UserError
from aigc_demo.modelcard import write_model_card
from aigc_demo.models.vae import VAE, vae_kl
from aigc_demo.training import digits_common as common
from aigc_demo.training.engine import TrainResult, TrainSettings, make_optimizer
from aigc_demo.training.finetune_card import FinetuneOrigin, final_loss_metrics
from aigc_demo.training.losses import VAE_RECON_LOSSES, vae_recon
from aigc_demo.training.schedule import Progress, lr_factor, set_lr

FP16_TOLERANCE_NATS = 0.1  # fp16 storage is kept when the test ELBO moves less than this


@dataclass
class VaeConfig:
    """Model and data settings of the VAE (saved in training.json and the model card)."""

    data_dir: str = "data/mnist"  # an IDX folder, or an .npz of images (labels unused)
    dataset: str = "mnist"
    init_from: str = ""  # a weights folder to start from (its architecture wins over the flags below)
    latent_dim: int = 32
    channels: int = 64
    hidden: int = 512
    kl_weight: float = 1.0
    recon: str = "bce"  # bce (Bernoulli NLL, the ELBO's term) | mse (squared error on pixel probabilities)
    kl_warmup: float = 0.1  # fraction of training over which the KL weight rises from 0
    lr_schedule: str = "cosine"  # constant | cosine
    warmup_steps: int = 200
    limit: int = 0
    eval_limit: int = 2000  # held-out digits for the fp16 storage check at export (test split; an .npz: its own)
    fp16: bool = True  # store fp16 when the test ELBO does not move (checked at export)
    note: str = ""

    def resolve_init(self) -> None:
        """Take the architecture from `init_from`'s config.json."""
        if self.init_from:
            found = common.read_config(self.init_from)
            if "latent_dim" not in found:
                raise UserError(f"{self.init_from} does not hold a VAE (its config.json has no latent_dim)")
            self.latent_dim = int(found["latent_dim"])
            self.channels = int(found.get("channels", 64))
            self.hidden = int(found.get("hidden", 512))

    def check(self) -> None:
        if self.latent_dim < 1 or self.channels < 2 or self.hidden < 1:
            raise ValueError("latent dim, channels and hidden size must be positive")
        if self.kl_weight < 0 or not 0 <= self.kl_warmup <= 1:
            raise ValueError("--kl-weight must be >= 0 and --kl-warmup in [0, 1]")
        if self.recon not in VAE_RECON_LOSSES:
            raise ValueError(f"--recon must be one of {', '.join(VAE_RECON_LOSSES)} (got {self.recon!r})")


class VaeTask:
    """TrainTask for the VAE, from scratch or from `init_from`."""

    def __init__(self, config: VaeConfig, settings: TrainSettings, origin: FinetuneOrigin | None = None) -> None:
        config.resolve_init()
        config.check()
        self.config, self.settings, self.origin = config, settings, origin
        self.items_per_step = settings.batch_size
        self.progress = Progress(settings.steps, settings.max_minutes)
        self.rng: Any = None
        self.recon_fn = vae_recon(config.recon)

    def build(self, accelerator: Any) -> None:
        cfg, s = self.config, self.settings
        self.accelerator = accelerator
        common.enable_tf32()
        self.data = DigitsData.load(cfg.data_dir, "train", accelerator.device, cfg.limit, cfg.dataset)
        if cfg.init_from:
            model = VAE.from_pretrained(cfg.init_from).float().train()
        else:
            model = VAE(latent_dim=cfg.latent_dim, channels=cfg.channels, hidden=cfg.hidden)
        opt = make_optimizer(s.optimizer, model.parameters(), s.lr)
        self.model, self.opt = accelerator.prepare(model, opt)

    def train_step(self, step: int) -> dict[str, float]:
        import torch

        cfg, s, acc = self.config, self.settings, self.accelerator
        if self.rng is None:
            self.rng = common.device_seed_generator(acc, s.seed, step)
        progress = self.progress(step)
        set_lr(self.opt, s.lr * lr_factor(progress, step, cfg.lr_schedule, cfg.warmup_steps))
        beta = cfg.kl_weight * (min(1.0, progress / cfg.kl_warmup) if cfg.kl_warmup > 0 else 1.0)
        grey, _ = self.data.batch(s.batch_size, self.rng)
        x = torch.bernoulli(grey, generator=self.rng)  # (B, 1, 28, 28) in {0, 1}
        logits, mean, logvar = self.model(x)
        recon, kl = self.recon_fn(logits.float(), x), vae_kl(mean.float(), logvar.float())
        loss = recon + beta * kl
        self.opt.zero_grad(set_to_none=True)
        acc.backward(loss)
        self.opt.step()
        values = torch.stack([(recon + kl).detach(), recon.detach(), kl.detach()]).tolist()
        return {"neg_elbo": values[0], "recon": values[1], "kl": values[2]}

    def preview(self) -> Any:
        import torch

        model = self.accelerator.unwrap_model(self.model)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            z = torch.randn(64, self.config.latent_dim, generator=gen).to(self.accelerator.device)
            probs = torch.sigmoid(model.decode(z).float())
        return preview_grid((probs * 255).round().byte().squeeze(1).cpu().numpy(), 8, 8)

    def _held_out(self) -> Any:
        """Digits to measure the stored weights on: the test split, or for an `.npz` (a visitor's
        images, no test split) the first training images, unlabelled ones shown as 0."""

        cfg = self.config
        if not is_npz(cfg.data_dir):
            return DigitsData.load(cfg.data_dir, "test", "cpu", cfg.eval_limit, cfg.dataset)
        count = cfg.eval_limit or len(self.data)
        return DigitsData(self.data.images[:count].cpu(), self.data.labels[:count].clamp(min=0).cpu())

    def export(self, out_dir: Path, result: TrainResult) -> None:
        import copy

        cfg = self.config
        model = self.accelerator.unwrap_model(self.model).float().eval()
        device = self.accelerator.device
        held_out = self._held_out()
        x = binarize_fixed(held_out.images).to(device)
        elbo32 = elbo_terms(model, x, seed=0)["elbo"]
        half = copy.deepcopy(model).half().float()
        elbo16 = elbo_terms(half, x, seed=0)["elbo"]
        use_fp16 = cfg.fp16 and abs(elbo16 - elbo32) < FP16_TOLERANCE_NATS
        common.save_module(model, out_dir, fp16=use_fp16)
        storage = (f"Storage: {'fp16' if use_fp16 else 'fp32'} (ELBO on {len(x)} held-out digits: fp32 weights "
                   f"{elbo32:.3f}, fp16-rounded {elbo16:.3f} nats).")
        write_vae_sample(model, out_dir, device)
        if cfg.latent_dim == 2:
            write_latent_scatter(model, held_out, out_dir, device)
        if self.origin is not None:
            self.origin.write(
                out_dir, result,
                what=(f"A variational autoencoder with a {cfg.latent_dim}-D latent space, fine-tuned on your "
                      f"images. {storage}"),
                lines=[f"- KL weight: {cfg.kl_weight}"],
                gallery={"title": f"{self.origin.base_title} (fine-tuned)", "task": "image-generation",
                         "family": "vae", "tab": "digits", "sample": "sample.png",
                         "metrics": final_loss_metrics(result.final_losses, ("recon", "kl"))},
                tags=["vae", "fine-tuned"], library_name="pytorch")
            return
        record = common.write_training_record(out_dir, self.settings, cfg, result, device,
                                              {"note_storage": storage, "note_binarization": BINARIZATION_NOTE})
        write_vae_card(out_dir, record)


BINARIZATION_NOTE = ("Binarization: stochastic (pixel = 1 with probability grey/255); training redraws it "
                     "for every batch, the test set uses one fixed draw (torch.Generator seed 0, on CPU).")


def write_vae_card(out_dir: Path, record: dict[str, Any]) -> None:
    dataset, dim = record["config"]["dataset"], record["config"]["latent_dim"]
    title = f"Convolutional VAE, {dim}-D latent ({dataset})"
    body = common.card_body(
        title,
        "A variational autoencoder: the encoder maps a digit to a Gaussian over a "
        f"{dim}-dimensional latent space, the decoder maps a latent point back to pixel "
        "probabilities (Bernoulli). Training maximises the ELBO = reconstruction log-likelihood minus "
        "the KL divergence that keeps the latent codes close to a standard normal, so that decoding "
        "random normal noise gives digits. Class: `aigc_demo.models.vae.VAE`."
        + (" `latents.npz` holds test-digit latent means and labels for the latent map." if dim == 2 else ""),
        record, record["config"].get("note", ""))
    write_model_card(out_dir, gallery={
        "title": title, "task": "image-generation", "family": "vae", "tab": "digits",
        "sample": "sample.png", "metrics": []},
        body=body, datasets=[dataset], tags=["vae", dataset], library_name="pytorch")


DEFAULTS = {"batch_size": 256, "lr": 1e-3, "steps": 25000, "out_dir": "runs/vae-mnist",
            "log_every": 100, "checkpoint_every": 5000}


def main(argv: list[str] | None = None) -> int:
    return common.train_main("vae", VaeConfig, DEFAULTS, VaeTask, argv)
