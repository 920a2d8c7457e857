"""Train the class-conditional DCGAN: `python -m aigc_demo train gan --data-dir DIR --out weights/NAME`.

`--init-from FOLDER` starts from a weights folder (its generator, its discriminator when it has
one, and their architecture from its config.json): that is fine-tuning, the Fine-tune tab's jobs
included (they add a FinetuneOrigin, which changes only what the folder's card says).

One step = `n_critic` discriminator updates, then one generator update (alternating, the
correct GAN loop). The generator that ships is an exponential moving average of the trained
one (smoother samples, better FID), with its batch-norm statistics recomputed at export.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigc_demo.data.idx import DigitsData
from aigc_demo.data.images import grid_array, preview_grid, save_png
from aigc_demo.errors import UserError
from aigc_demo.modelcard import write_model_card
from aigc_demo.training import digits_common as common
from aigc_demo.training.engine import TrainResult, TrainSettings, make_optimizer
from aigc_demo.training.finetune_card import FinetuneOrigin, final_loss_metrics
from aigc_demo.training.losses import GAN_LOSSES, gan_losses, interpolates, penalty_from_scores
from aigc_demo.training.schedule import Progress, lr_factor, set_lr


@dataclass
class GanConfig:
    """Model and data settings of the DCGAN (saved in training.json and the model card)."""

    data_dir: str = "data/mnist"  # an IDX folder, or an .npz of images and labels (-1: unlabelled)
    dataset: str = "mnist"  # mnist | fashion-mnist
    init_from: str = ""  # a weights folder to start from (its architecture wins over the flags below)
    loss: str = "nsgan"  # nsgan | hinge | wgan-gp
    latent_dim: int = 64
    g_channels: int = 32
    d_channels: int = 32
    embed_dim: int = 32
    spectral_norm: bool = True  # in D; turned off automatically for wgan-gp (the penalty does its job)
    n_critic: int = 1  # D updates per G update (5 is usual for wgan-gp)
    gp_weight: float = 10.0
    beta1: float = 0.5
    beta2: float = 0.999
    ema_decay: float = 0.999  # 0: ship the raw generator
    lr_schedule: str = "constant"  # constant | cosine
    warmup_steps: int = 0
    limit: int = 0  # use only the first N training images (0: all)
    unlabelled_digit: int = 0  # the class given to images without a label
    preview_side: int = 10  # previews show side x side samples
    bn_samples: int = 10000  # the exported generator's batch-norm statistics are measured on these
    note: str = ""  # extra text for the model card

    def resolve_init(self) -> None:
        """Take the architecture from `init_from`'s config.json (and its discriminator's)."""
        if not self.init_from:
            return
        g_cfg = common.read_config(self.init_from)
        if "z_dim" not in g_cfg:
            raise UserError(f"{self.init_from} does not hold a GAN generator (its config.json has no z_dim)")
        d_folder = Path(self.init_from) / "discriminator"
        d_cfg = common.read_config(d_folder) if (d_folder / "config.json").is_file() else {}
        self.latent_dim = int(g_cfg["z_dim"])
        self.g_channels = int(g_cfg.get("channels", 32))
        self.d_channels = int(d_cfg.get("channels", self.g_channels))
        self.embed_dim = int(g_cfg.get("embed_dim", 32))
        self.spectral_norm = bool(d_cfg.get("spectral_norm", True))

    def check(self) -> None:
        if self.loss not in GAN_LOSSES:
            raise ValueError(f"--loss must be one of {', '.join(GAN_LOSSES)} (got {self.loss!r})")
        if self.latent_dim < 1 or min(self.g_channels, self.d_channels) < 4 or self.n_critic < 1:
            raise ValueError("latent dim, channels and n_critic must be positive (channels >= 4)")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"--ema-decay must be in [0, 1) (got {self.ema_decay})")


class GanTask:
    """TrainTask for the conditional DCGAN, from scratch or from `init_from`."""

    def __init__(self, config: GanConfig, settings: TrainSettings, origin: FinetuneOrigin | None = None) -> None:
        config.resolve_init()
        config.check()
        self.config, self.settings, self.origin = config, settings, origin
        self.items_per_step = settings.batch_size * config.n_critic
        self.progress = Progress(settings.steps, settings.max_minutes)
        self.gen_rng: Any = None
        self.fresh_discriminator = not config.init_from

    def _models(self) -> tuple[Any, Any]:
        """(G, D): the `init_from` folder's, or new ones."""
        from aigc_demo.models.gan import Discriminator, Generator

        cfg = self.config
        D: Any = None
        if cfg.init_from:
            G = Generator.from_pretrained(cfg.init_from).float().train()
            d_folder = Path(cfg.init_from) / "discriminator"
            if (d_folder / "model.safetensors").is_file():
                D = Discriminator.from_pretrained(str(d_folder)).float().train()
            self.fresh_discriminator = D is None  # a generator without its discriminator: D starts afresh
        else:
            G = Generator(z_dim=cfg.latent_dim, num_classes=10, embed_dim=cfg.embed_dim, channels=cfg.g_channels)
        if D is None:
            D = Discriminator(num_classes=G.num_classes, channels=cfg.d_channels,
                              spectral_norm=cfg.spectral_norm and cfg.loss != "wgan-gp")
        return G, D

    def build(self, accelerator: Any) -> None:
        import torch

        cfg, s = self.config, self.settings
        self.accelerator = accelerator
        common.enable_tf32()
        self.data = DigitsData.load(cfg.data_dir, "train", accelerator.device, cfg.limit, cfg.dataset)
        self.data.labels = self.data.labels.masked_fill(self.data.labels < 0, cfg.unlabelled_digit)
        G, D = self._models()
        betas = (cfg.beta1, cfg.beta2)
        opt_g = make_optimizer(s.optimizer, G.parameters(), s.lr, betas=betas)
        opt_d = make_optimizer(s.optimizer, D.parameters(), s.lr, betas=betas)
        self.G, self.D, self.opt_g, self.opt_d = accelerator.prepare(G, D, opt_g, opt_d)
        self.ema = copy.deepcopy(G).to(accelerator.device).eval().requires_grad_(False)
        accelerator.register_for_checkpointing(self.ema)
        self.d_loss_fn, self.g_loss_fn = gan_losses(cfg.loss)
        self.present = sorted(set(int(v) for v in torch.unique(self.data.labels).tolist()))
        count = cfg.preview_side ** 2
        self.fixed_z = torch.randn(count, cfg.latent_dim, generator=torch.Generator().manual_seed(1234))
        self.fixed_y = torch.tensor([self.present[i % len(self.present)] for i in range(count)])

    def _ema_update(self) -> None:
        import torch

        decay = self.config.ema_decay
        live = self.accelerator.unwrap_model(self.G)
        with torch.no_grad():
            if decay == 0:
                self.ema.load_state_dict(live.state_dict())
                return
            ema_p, live_p = list(self.ema.parameters()), list(live.parameters())
            torch._foreach_lerp_(ema_p, live_p, 1 - decay)
            for b_ema, b in zip(self.ema.buffers(), live.buffers()):
                b_ema.copy_(b)

    def train_step(self, step: int) -> dict[str, float]:
        import torch

        cfg, s, acc = self.config, self.settings, self.accelerator
        if self.gen_rng is None:
            self.gen_rng = common.device_seed_generator(acc, s.seed, step)
        rng, B, device = self.gen_rng, s.batch_size, acc.device
        lr = s.lr * lr_factor(self.progress(step), step, cfg.lr_schedule, cfg.warmup_steps)
        set_lr(self.opt_g, lr)
        set_lr(self.opt_d, lr)

        for i in range(cfg.n_critic):  # --- discriminator: real digits up, generated digits down
            real, labels = self.data.batch(B, rng)
            real = real * 2 - 1  # (B, 1, 28, 28) in [-1, 1]
            z = torch.randn(B, cfg.latent_dim, device=device, generator=rng)
            with torch.set_grad_enabled(i == cfg.n_critic - 1):
                fake = self.G(z, labels)  # the last one keeps its graph: the G update reuses it
            images, classes = [real, fake.detach()], [labels, labels]
            if cfg.loss == "wgan-gp":  # one D pass over real, fake and interpolates
                mixed = interpolates(real, fake, rng)
                images.append(mixed)
                classes.append(labels)
            scores = self.D(torch.cat(images), torch.cat(classes)).float()
            d_real, d_fake = scores[:B], scores[B:2 * B]
            d_loss = self.d_loss_fn(d_real, d_fake)
            if cfg.loss == "wgan-gp":
                d_loss = d_loss + cfg.gp_weight * penalty_from_scores(scores[2 * B:], mixed)
            self.opt_d.zero_grad(set_to_none=True)
            acc.backward(d_loss)
            self.opt_d.step()

        # --- generator: make the (just updated) discriminator call the last fakes real
        g_loss = self.g_loss_fn(self.D(fake, labels).float())
        self.opt_g.zero_grad(set_to_none=True)
        acc.backward(g_loss)
        self.opt_g.step()
        self._ema_update()
        d_acc = ((d_real > 0).float().mean() + (d_fake < 0).float().mean()) / 2
        values = torch.stack([d_loss.detach().float(), g_loss.detach().float(), d_acc]).tolist()
        return {"d_loss": values[0], "g_loss": values[1], "d_accuracy": values[2]}

    def _generator_for_export(self) -> Any:
        """The EMA generator with batch-norm statistics measured on `bn_samples` of its own outputs
        (batches of 500 over the classes in the data)."""
        import torch

        G = copy.deepcopy(self.ema if self.config.ema_decay > 0 else self.accelerator.unwrap_model(self.G))
        device = self.accelerator.device
        G = G.float().to(device)
        bns = [m for m in G.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
        G.train()
        gen = torch.Generator(device=device).manual_seed(99)
        y = torch.tensor(self.present, device=device).repeat(500)[:500]
        with torch.no_grad():
            for _ in range(max(1, self.config.bn_samples // 500)):
                G(torch.randn(500, G.z_dim, device=device, generator=gen), y)
        for m in bns:
            m.momentum = 0.1
        return G.eval()

    def preview(self) -> Any:
        import torch

        from aigc_demo.models.gan import to_uint8

        side, device = self.config.preview_side, self.accelerator.device
        with torch.no_grad():
            images = self.ema(self.fixed_z.to(device), self.fixed_y.to(device))
        return preview_grid(to_uint8(images).cpu().numpy(), side, side)

    def export(self, out_dir: Path, result: TrainResult) -> None:
        import torch

        from aigc_demo.models.gan import to_uint8

        G = self._generator_for_export()
        common.save_module(G, out_dir, fp16=False)
        common.save_module(self.accelerator.unwrap_model(self.D), out_dir / "discriminator", fp16=True)  # a starting point for fine-tuning
        device = self.accelerator.device
        with torch.no_grad():
            # sample.png: each row one class (cycling through those in the data), columns 10 noise vectors
            z = self.fixed_z[:10].repeat(10, 1).to(device)
            y = torch.tensor([self.present[r % len(self.present)] for r in range(10)]).repeat_interleave(10).to(device)
            images = to_uint8(G(z, y)).cpu().numpy()
        save_png(grid_array(images, 10, 10), out_dir / "sample.png")
        if self.origin is not None:
            self._write_finetune_card(out_dir, result)
            return
        record = common.write_training_record(
            out_dir, self.settings, self.config, result, device,
            {"note_ema": f"Shipped generator: EMA of weights (decay {self.config.ema_decay}), "
                         f"batch-norm statistics recomputed on {self.config.bn_samples:,} of its own samples; "
                         "fp32 storage."})
        write_gan_card(out_dir, record)

    def _write_finetune_card(self, out_dir: Path, result: TrainResult) -> None:
        assert self.origin is not None
        self.origin.write(
            out_dir, result,
            what=("A class-conditional DCGAN fine-tuned on your images. `model.safetensors` is the generator "
                  "(EMA of the trained weights, batch-norm statistics recomputed), `discriminator/` the "
                  "discriminator, kept so training can go on."),
            lines=[f"- GAN loss: {self.config.loss}; classes in the data: {self.present}"
                   + ("; the discriminator started from scratch (the base had none)" if self.fresh_discriminator else "")],
            record={"classes": self.present, "fresh_discriminator": self.fresh_discriminator},
            gallery={"title": f"{self.origin.base_title} (fine-tuned)", "task": "image-generation", "family": "gan",
                     "tab": "digits", "sample": "sample.png",
                     "metrics": final_loss_metrics(result.final_losses, ("g_loss", "d_loss"))},
            tags=["gan", "fine-tuned"], library_name="pytorch")


def write_gan_card(out_dir: Path, record: dict[str, Any]) -> None:
    dataset = record["config"]["dataset"]
    body = common.card_body(
        f"Conditional DCGAN ({dataset})",
        "A class-conditional DCGAN for 28x28 grayscale digits. The generator turns noise plus a digit "
        "label into an image; the discriminator (projection head on the label) learns to tell real "
        "digits from generated ones, and the generator learns to fool it. `model.safetensors` is the "
        "generator (`aigc_demo.models.gan.Generator`), `discriminator/` the discriminator (kept for "
        "fine-tuning). Output in [-1, 1], -1 = background.",
        record, record["config"].get("note", ""))
    write_model_card(out_dir, gallery={
        "title": f"Conditional DCGAN ({dataset})", "task": "image-generation", "family": "gan",
        "tab": "digits", "sample": "sample.png", "metrics": []},
        body=body, datasets=[dataset], tags=["gan", "dcgan", "conditional", dataset], library_name="pytorch")


DEFAULTS = {"batch_size": 128, "lr": 2e-4, "steps": 20000, "out_dir": "runs/dcgan-mnist",
            "log_every": 100, "checkpoint_every": 2000}


def main(argv: list[str] | None = None) -> int:
    return common.train_main("gan", GanConfig, DEFAULTS, GanTask, argv)
