"""Tiny model folders for tests: a real card and a real safetensors file, made in a temp dir."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
from PIL import Image

from aigc_demo.modelcard import write_model_card


def make_model_folder(folder: Path, *, title: str, task: str, family: str, tab: str | None,
                      shape: tuple[int, ...] = (10, 20), metrics: list[dict] | None = None,
                      sample: bool = True, sample_text: str | None = None, description: str = "") -> Path:
    """A folder the catalog accepts: README.md card, model.safetensors, optional sample.png."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({"weight": np.zeros(shape, dtype=np.float16), "bias": np.zeros(shape[-1], np.float16)},
              str(folder / "model.safetensors"))
    gallery = {"title": title, "task": task, "family": family, "tab": tab, "metrics": metrics or []}
    if sample_text:
        gallery["sample_text"] = sample_text
    if description:
        gallery["description"] = description
    if sample:
        Image.fromarray((np.indices((28, 28)).sum(0) * 4).astype(np.uint8)).save(folder / "sample.png")
        gallery["sample"] = "sample.png"
    write_model_card(folder, gallery=gallery, body=f"# {title}\n\nA test fixture.", datasets=["mnist"])
    return folder


def make_broken_folder(folder: Path) -> Path:
    """A folder whose card has a YAML header that does not parse."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "README.md").write_text("---\nlicense: [mit\ntitle: : :\n---\n# broken\n")
    return folder


TINY_SD_DEFAULTS = {"steps": 2, "guidance": 0.0, "width": 32, "height": 32}


def make_tiny_sd_pipeline(folder: Path, title: str = "Tiny SD (test)") -> Path:
    """A Stable-Diffusion pipeline with tiny random UNet/VAE/CLIP (~100K parameters), saved as
    safetensors with a card (task text-to-image, tab image): the real loading path, in a second.

    The CLIP tokenizer is made offline from a vocab.json (characters and their end-of-word
    forms) and an empty merges.txt, so words are split into characters.
    """
    import json
    import string
    import tempfile

    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(8, 16), layers_per_block=1, sample_size=16,
                                in_channels=4, out_channels=4, cross_attention_dim=16, norm_num_groups=4,
                                attention_head_dim=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"))
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        norm_num_groups=4, sample_size=32)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for char in string.ascii_lowercase + string.digits + ".,!?'-:;()":
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "vocab.json").write_text(json.dumps(vocab))
        (Path(tmp) / "merges.txt").write_text("#version: 0.2\n")
        tokenizer = CLIPTokenizer(vocab=str(Path(tmp) / "vocab.json"), merges=str(Path(tmp) / "merges.txt"),
                                  model_max_length=16)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2,
        num_hidden_layers=2, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1,
        projection_dim=16))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="trailing", steps_offset=1)
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(folder, safe_serialization=True)
    write_model_card(folder, gallery={"title": title, "task": "text-to-image", "family": "diffusion",
                                      "tab": "image", "metrics": [], "defaults": dict(TINY_SD_DEFAULTS)},
                     body=f"# {title}\n\nA tiny random Stable Diffusion pipeline: a test fixture.",
                     library_name="diffusers", pipeline_tag="text-to-image")
    return folder


def make_catalog_dir(root: Path) -> Path:
    """Two cards of different tasks (weights are placeholders) and one broken card."""
    make_model_folder(root / "toy-gan", title="Toy GAN", task="image-generation", family="gan",
                      tab="digits", metrics=[{"name": "FID", "value": 3.5, "lower_is_better": True}])
    make_model_folder(root / "toy-gpt", title="Toy GPT", task="text-generation", family="gpt",
                      tab="text", shape=(4, 8), sample=False)
    make_broken_folder(root / "broken-model")
    return root


# (task, family, tab, how many) for the 50-model catalog: with the curated hub models (two each of
# text, code and text to image) every task's count differs (15, 13, 11, 10, 7), so a filter change
# is seen in the count line.
MANY_MODELS = (("image-generation", "gan", "digits", 15), ("text-generation", "gpt", "text", 11),
               ("code-generation", "gpt", "code", 9), ("text-to-image", "diffusion", "image", 8),
               ("classification", "classifier", "digits", 7))
HOSTILE_TITLE = 'Model <img src=x onerror="window.__pwned=1"> ${1+1} {{x}} & "quoted"'


def make_many_models(root: Path) -> Path:
    """50 model folders of every task (placeholder weights), most with a sample image or text,
    metrics and a description; one title is hostile HTML, which the gallery must show as text."""
    index = 0
    for task, family, tab, count in MANY_MODELS:
        for number in range(count):
            title = HOSTILE_TITLE if index == 0 else f"{family.upper()} model {number + 1} ({task})"
            make_model_folder(root / f"m{index:02d}-{family}", title=title, task=task, family=family, tab=tab,
                              shape=(4, 4), sample=index % 3 != 2,
                              sample_text="def f(x):\n    return x < 1 and x > 0\n" if index % 3 == 2 else None,
                              description=f"Fixture model {index}: <b>not bold</b>.",
                              metrics=[{"name": "FID", "value": 10 + index, "lower_is_better": True}])
            index += 1
    return root


def _card(folder: Path, title: str, task: str, family: str, tab: str, metrics: list[dict] | None = None) -> None:
    write_model_card(folder, gallery={"title": title, "task": task, "family": family, "tab": tab,
                                      "metrics": metrics or []},
                     body=f"# {title}\n\nRandom weights, for tests.")


def make_tiny_digit_models(root: Path) -> dict[str, Path]:
    """A tiny GAN, a 2-D and a 4-D VAE and a classifier with random weights, each with a card."""
    import torch

    from aigc_demo.models.classifier import DigitClassifier
    from aigc_demo.models.gan import Generator
    from aigc_demo.models.vae import VAE

    torch.manual_seed(0)
    folders = {name: root / name for name in ("tiny-gan", "tiny-vae-2d", "tiny-vae-4d", "tiny-classifier")}
    Generator(z_dim=8, channels=8).save_pretrained(folders["tiny-gan"])
    _card(folders["tiny-gan"], "Tiny GAN", "image-generation", "gan", "digits",
          [{"name": "FID", "value": 3.5, "lower_is_better": True}])
    for name, dim in (("tiny-vae-2d", 2), ("tiny-vae-4d", 4)):
        VAE(latent_dim=dim, channels=8, hidden=16).save_pretrained(folders[name])
        _card(folders[name], f"Tiny VAE {dim}-D", "image-generation", "vae", "digits")
    rng = np.random.default_rng(0)
    np.savez(folders["tiny-vae-2d"] / "latents.npz", z=rng.normal(size=(200, 2)).astype(np.float16),
             labels=rng.integers(0, 10, 200).astype(np.uint8))
    DigitClassifier(channels=8).save_pretrained(folders["tiny-classifier"])
    _card(folders["tiny-classifier"], "Tiny classifier", "classification", "classifier", "digits")
    if importlib.util.find_spec("diffusers") is not None:  # the GPU machine may lack it
        folders["tiny-diffusion"] = make_tiny_diffusion(root / "tiny-diffusion")
    return folders


def make_tiny_diffusion(folder: Path, title: str = "Tiny diffusion", steps: int = 4) -> Path:
    """A class-conditional diffusion folder as `train diffusion` writes it, random tiny UNet."""
    import torch

    from aigc_demo.models.diffusion import UNetShape, build_unet, train_scheduler

    torch.manual_seed(0)
    build_unet(UNetShape(channels=(16, 32), norm_groups=8)).save_pretrained(folder / "unet")
    train_scheduler().save_pretrained(folder / "scheduler")
    (folder / "config.json").write_text(json.dumps({"family": "diffusion", "patch": 2, "null_class": 10,
                                                    "sampling_steps": steps, "guidance": 1.0}))
    _card(folder, title, "image-generation", "diffusion", "digits",
          [{"name": "FID / floor", "value": 2.5, "lower_is_better": True}])
    return folder


def make_weights_dir(root: Path) -> Path:
    """What the launched test app serves: tiny real models of each family and one broken card."""
    make_tiny_digit_models(root)
    make_model_folder(root / "toy-gpt", title="Toy GPT", task="text-generation", family="gpt",
                      tab=None, shape=(4, 8), sample=False)  # placeholder weights: in no picker
    make_tiny_gpt(root / "tiny-gpt", title="Tiny GPT", task="text-generation", tab="text")
    make_tiny_gpt(root / "tiny-chat", title="Tiny chat GPT", task="text-generation", tab="text", chat=True)
    make_tiny_gpt(root / "tiny-coder", title="Tiny code GPT", task="code-generation", tab="code")
    make_tiny_char_gpt(root / "tiny-char-gpt")
    make_broken_folder(root / "broken-model")
    if importlib.util.find_spec("diffusers") is not None:  # the GPU machine may lack it
        make_tiny_sd_pipeline(root / "tiny-sd")
    return root


TINY_CODE = "def add(a, b):\n    return a + b\n\n\nclass Point:\n    x = 0\n\n" * 30
TINY_CHAT_TEMPLATE = ("{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
                      "{% if add_generation_prompt %}<assistant>{% endif %}")


def make_tiny_gpt(folder: Path, *, title: str, task: str = "text-generation", tab: str = "text",
                  chat: bool = False, steps: int = 60) -> Path:
    """A 2-layer char-level GPT-2 trained a few steps on repeated code, with a card (and a chat
    template when `chat`), saved in Hugging Face layout: loads through the real loading path."""
    import torch

    from aigc_demo.models.gpt import GPTModelConfig, build_gpt
    from aigc_demo.models.tokenizers import build_char_tokenizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        alphabet = TINY_CODE + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;!?'<>-_()[]{}\n"
        tok = build_char_tokenizer(alphabet)
        model = build_gpt(GPTModelConfig(n_layer=2, n_head=2, n_embd=32, block_size=64, dropout=0.0,
                                         vocab_size=len(tok)), tok.get_vocab()["\n"], None)
        data = torch.tensor(tok(TINY_CODE)["input_ids"])
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for _ in range(steps):
            starts = torch.randint(len(data) - 33, (16, 1))
            chunk = data[starts + torch.arange(33)]
            model(input_ids=chunk, labels=chunk).loss.backward()
            optimizer.step()
            optimizer.zero_grad()
        if chat:
            tok.chat_template = TINY_CHAT_TEMPLATE
        model.eval().save_pretrained(folder)
        tok.save_pretrained(folder)
    finally:
        torch.set_num_threads(threads)
    write_model_card(folder, gallery={"title": title, "task": task, "family": "gpt", "tab": tab,
                                      "metrics": [], "sample_text": "def add(a, b):\n    return a + b\n"},
                     body=f"# {title}\n\nA tiny char-level GPT for tests.", library_name="transformers")
    return folder


TINY_TEXT = ("To be, or not to be, that is the question:\n"
             "Whether 'tis nobler in the mind to suffer\n"
             "The slings and arrows of outrageous fortune,\n"
             "Or to take arms against a sea of troubles.\n") * 3


def make_tiny_char_gpt(folder: Path, title: str = "Tiny char GPT") -> Path:
    """A real (random) 1-layer char-level GPT2LMHeadModel with its tokenizer and a card (task
    text-generation, family gpt, tab text): the fine-tune tab trains it in a second."""
    import torch

    from aigc_demo.models.gpt import GPTModelConfig, build_gpt
    from aigc_demo.models.tokenizers import build_char_tokenizer, save_tokenizer

    torch.manual_seed(0)
    tok = build_char_tokenizer(TINY_TEXT + "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,;:!?'-\n0123456789")
    model = build_gpt(GPTModelConfig(n_layer=1, n_head=2, n_embd=32, block_size=64, dropout=0.0,
                                     vocab_size=len(tok)), tok.get_vocab()["\n"], None)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    save_tokenizer(tok, folder)
    write_model_card(folder, gallery={"title": title, "task": "text-generation", "family": "gpt", "tab": "text",
                                      "sample_text": "To be", "metrics": []},
                     body=f"# {title}\n\nRandom weights, for tests.", library_name="transformers")
    return folder


def make_tiny_causal_lm(folder: Path, title: str = "Tiny GPT-2") -> Path:
    """A tiny GPT-2 (transformers config) with a byte-level BPE trained here with `tokenizers`,
    carded as a causal LM (family causal-lm): what LoRA fine-tuning of hub models runs on in tests."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from aigc_demo.models.tokenizers import train_bpe_tokenizer

    torch.manual_seed(0)
    tok = train_bpe_tokenizer([TINY_TEXT * 4], vocab_size=300)
    config = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        pad_token_id=tok.eos_token_id)
    folder.mkdir(parents=True, exist_ok=True)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    write_model_card(folder, gallery={"title": title, "task": "text-generation", "family": "causal-lm",
                                      "tab": "text", "metrics": []},
                     body=f"# {title}\n\nRandom weights, for tests.", library_name="transformers")
    return folder


def make_tiny_mnist(folder: Path, train: int = 256, test: int = 128) -> Path:
    """MNIST's own IDX layout (train and test splits, gzipped) with random strokes: what a Lab or
    a built-in fine-tune finds under AIGC_DATA_DIR/mnist, in milliseconds."""
    from aigc_demo.data.idx import write_idx

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("t10k", test)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = np.zeros((count, 28, 28), np.uint8)
        for i, label in enumerate(labels):  # a bar whose position says the digit: learnable
            images[i, 4:24, 2 + 2 * int(label):5 + 2 * int(label)] = 255
        images = np.maximum(images, (rng.random((count, 28, 28)) < 0.03).astype(np.uint8) * 255)
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
    return folder


def make_tiny_corpus(folder: Path, repeats: int = 40) -> Path:
    """A small `tinyshakespeare/input.txt` for the GPT lab."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "input.txt").write_text(TINY_TEXT * repeats, encoding="utf-8")
    return folder
