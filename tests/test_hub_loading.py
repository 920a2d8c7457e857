"""The hub loading path: lazy, shared, LRU within a budget, offline-aware, safetensors only."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import pytest

from aigc_demo import environment, hub, hub_checks, hub_download
from aigc_demo.catalog import (HUB_MODELS, add_hub_model, build_catalog, remove_hub_model, user_hub_specs,
                               validate_repo_id)
from aigc_demo.errors import UserError
from aigc_demo.loading import ModelRegistry

SMALL = dict(steps=1, guidance=0.0, width=32, height=32)


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face cache, and the Hub in offline mode (as the start-up probe sets it)."""
    import huggingface_hub

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GPT-2 causal LM with a word-level tokenizer, saved as a hub-style folder."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-lm")
    vocab = {w: i for i, w in enumerate(["<unk>", "<eos>", "the", "cat", "sat", "on", "mat", "a"])}
    core = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", eos_token="<eos>").save_pretrained(folder)
    config = GPT2Config(vocab_size=len(vocab), n_positions=32, n_embd=16, n_layer=1, n_head=2,
                        bos_token_id=1, eos_token_id=1)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def copy_pipeline(weights_dir: Path, dest: Path) -> Path:
    shutil.copytree(weights_dir / "tiny-sd", dest)
    return dest


# ---- ids and kinds ----------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["stabilityai/sd-turbo", " Qwen/Qwen2.5-Coder-0.5B-Instruct ", "a/b", "x_1/y.z-2"])
def test_valid_repo_ids(text: str) -> None:
    assert validate_repo_id(text) == text.strip()


@pytest.mark.parametrize("text, message", [
    ("", "Type a Hugging Face model id"),
    ("sd-turbo", "not a Hugging Face model id"),
    ("a/b/c", "not a Hugging Face model id"),
    ("owner/na me", "not a Hugging Face model id"),
    ("owner/..", "not a Hugging Face model id"),
    ("owner/a--b", "not a Hugging Face model id"),
    ("https://huggingface.co/stabilityai/sd-turbo", "is a web address"),
    ("owner/model.git", "not a Hugging Face model id"),  # refused by huggingface_hub's own check
    ("owner/" + "n" * 97, "not a Hugging Face model id"),  # names are at most 96 characters
    ("ownér/model", "not a Hugging Face model id"),  # letters outside ASCII
])
def test_invalid_repo_ids_are_refused(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        validate_repo_id(text)


def test_the_repo_id_check_agrees_with_huggingface_hub() -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id as hf_validate

    for text in ("owner/model.git", "owner/" + "n" * 97, "owner/a--b", "owner/.."):
        with pytest.raises(HFValidationError):
            hf_validate(text)
        with pytest.raises(UserError):
            validate_repo_id(text)


def test_kinds_come_from_the_config(weights_dir: Path, tiny_lm: Path, tmp_path: Path) -> None:
    assert hub.resolve(str(tiny_lm)).kind == hub.CAUSAL_LM
    assert hub.resolve(str(weights_dir / "tiny-sd")).kind == hub.TEXT_TO_IMAGE
    with pytest.raises(ValueError, match="is a diffusers text-to-image pipeline, but this tab needs a "
                                         "transformers causal language model"):
        hub.resolve(str(weights_dir / "tiny-sd"), kind=hub.CAUSAL_LM)
    vit = tmp_path / "vit"
    vit.mkdir()
    (vit / "config.json").write_text(json.dumps({"model_type": "vit",
                                                 "architectures": ["ViTForImageClassification"]}))
    with pytest.raises(ValueError, match="`vit` model .*not a causal language model"):
        hub.resolve(str(vit))
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "config.json").write_text(json.dumps({"model_type": "mine", "auto_map": {"AutoModel": "m.M"}}))
    with pytest.raises(ValueError, match="trust_remote_code"):
        hub.resolve(str(custom))


def test_pickle_only_folders_are_refused(weights_dir: Path, tiny_lm: Path, tmp_path: Path) -> None:
    lm = tmp_path / "pickled-lm"
    lm.mkdir()
    shutil.copy(tiny_lm / "config.json", lm / "config.json")
    (lm / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ValueError, match=r"only pickle weights \(pytorch_model.bin\).*safetensors only"):
        hub.resolve(str(lm))
    pipe = copy_pipeline(weights_dir, tmp_path / "pickled-pipe")
    unet_weights = pipe / "unet" / "diffusion_pytorch_model.safetensors"
    unet_weights.rename(unet_weights.with_suffix(".bin"))
    with pytest.raises(ValueError, match="the `unet` component has only pickle weights"):
        hub.resolve(str(pipe))


# ---- lazy, shared, LRU ------------------------------------------------------------------------

def test_nothing_loads_until_first_use_then_one_copy_is_shared(
        weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aigc_demo import loading
    from aigc_demo.services import imagegen

    fresh = ModelRegistry(budget_bytes=2**30)
    monkeypatch.setattr(loading, "registry", fresh)
    monkeypatch.setattr(imagegen, "registry", fresh)  # imagegen holds the registry by name
    ref = str(weights_dir / "tiny-sd")
    assert fresh.loaded() == []
    pipe, source, load_s = imagegen.load_pipeline(ref)
    assert load_s > 0 and source.kind == hub.TEXT_TO_IMAGE
    again, _, load_again = imagegen.load_pipeline(ref)
    assert again is pipe and load_again == 0.0
    [entry] = fresh.loaded()
    assert entry["device"] == "cpu" and entry["memory_mb"] > 0


def test_least_recently_used_model_is_unloaded_under_a_tiny_budget(
        weights_dir: Path, tiny_lm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aigc_demo import loading
    from aigc_demo.services import imagegen

    first = str(weights_dir / "tiny-sd")
    second = str(copy_pipeline(weights_dir, tmp_path / "tiny-sd-2"))
    probe = ModelRegistry(budget_bytes=2**40)
    monkeypatch.setattr(loading, "registry", probe)
    monkeypatch.setattr(imagegen, "registry", probe)
    imagegen.load_pipeline(first)
    one_model = probe.loaded()[0]["memory_mb"] * 2**20
    budget = ModelRegistry(budget_bytes=int(one_model * 1.5))  # room for one, not two
    monkeypatch.setattr(loading, "registry", budget)
    monkeypatch.setattr(imagegen, "registry", budget)
    imagegen.load_pipeline(first)
    imagegen.load_pipeline(second)
    keys = [m["key"] for m in budget.loaded()]
    assert len(keys) == 1 and "tiny-sd-2" in keys[0]
    # the causal LM path shares the registry and the same rules
    source = hub.resolve(str(tiny_lm), kind=hub.CAUSAL_LM)
    model, tokenizer = budget.get("lm", lambda: hub.load_causal_lm(source))
    assert model.config.model_type == "gpt2" and tokenizer("the cat")["input_ids"] == [2, 3]
    assert not model.training


# ---- not cached, hub offline or unreachable ---------------------------------------------------

def test_missing_hub_model_with_hub_offline_fails_fast_and_says_how_to_get_it(empty_cache: Path) -> None:
    started = time.perf_counter()
    with pytest.raises(hub.HubModelMissing) as caught:
        hub.resolve("stabilityai/sd-turbo", kind=hub.TEXT_TO_IMAGE)
    assert time.perf_counter() - started < 3
    message = str(caught.value)
    assert "stabilityai/sd-turbo" in message and "is not downloaded" in message
    assert "~1.3B parameters" in message and "5.2 GB" in message
    assert "offline" in message
    assert "`hf download stabilityai/sd-turbo`" in message
    assert "connect this machine to the internet" in message and "local folder" in message


def test_missing_model_through_the_image_service_is_a_value_error(empty_cache: Path) -> None:
    from aigc_demo.services.imagegen import ImageSettings, generate_images

    with pytest.raises(ValueError, match="stabilityai/sdxl-turbo .*~3.5B parameters.*hf download"):
        generate_images("stabilityai/sdxl-turbo", ImageSettings("a cat", **SMALL))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_hub_without_offline_mode_fails_within_seconds(
        empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    started = time.perf_counter()
    with pytest.raises(hub.HubModelMissing, match="cannot be reached") as caught:
        hub.resolve("openai-community/gpt2", kind=hub.CAUSAL_LM)
    assert time.perf_counter() - started < 3
    assert "`hf download openai-community/gpt2`" in str(caught.value)


def test_a_cached_snapshot_loads_without_the_network(weights_dir: Path, empty_cache: Path) -> None:
    """A repo laid out in the cache the way huggingface_hub stores it is found offline."""
    repo = empty_cache / "models--someone--tiny-sd"
    snapshot = repo / "snapshots" / "0123abcd"
    shutil.copytree(weights_dir / "tiny-sd", snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    source = hub.resolve("someone/tiny-sd", kind=hub.TEXT_TO_IMAGE)
    assert source.path == snapshot and source.revision == "0123abcd" and source.repo_id == "someone/tiny-sd"


# ---- download progress plumbing ---------------------------------------------------------------

def test_download_progress_reports_bytes_and_eta(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """snapshot_download is faked, but drives the tqdm class the way the real one does."""
    import huggingface_hub

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    seen_kwargs: dict = {}

    def fake_hf_hub_download(repo_id: str, filename: str, **kwargs: object) -> str:
        return str(config)

    def fake_snapshot_download(repo_id: str, **kwargs: object) -> str:
        seen_kwargs.update(kwargs)
        cls = kwargs["tqdm_class"]
        files = cls(total=2, desc="Fetching 2 files")  # the file counter: not reported
        transfer = cls(total=0, unit="B", unit_scale=True, desc="Downloading bytes")
        written = cls(total=0, unit="B", unit_scale=True, desc="Reconstructing (incomplete total...)")
        written.total = 4000
        for _ in range(4):
            transfer.update(1000)
            written.update(1000)
            time.sleep(0.01)
        files.update(2)
        for bar in (files, transfer, written):
            bar.close()
        return str(tmp_path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    monkeypatch.setattr(hub_download, "hub_reachable", lambda timeout=2.0: (True, "faked"))
    monkeypatch.setattr(hub_download, "download_size", lambda *args: 4000)  # the size check asks the Hub first
    reports: list[hub.DownloadProgress] = []
    path = hub.download_model("someone/lm", kind=hub.CAUSAL_LM, on_progress=reports.append)
    assert path == tmp_path
    assert [r.done_bytes for r in reports] == [1000, 2000, 3000, 4000]
    assert all(r.total_bytes == 4000 for r in reports)
    assert reports[-1].fraction == 1.0 and reports[-1].eta_s == 0
    assert reports[0].bytes_per_s > 0 and reports[0].eta_s and reports[0].eta_s > 0
    assert "of 3.9 KB" in reports[0].text() and "left" in reports[0].text()
    assert "*.bin" in seen_kwargs["ignore_patterns"]  # pickle files are never fetched


def test_download_patterns_fetch_pipeline_components_only() -> None:
    cpu = hub.download_patterns(hub.TEXT_TO_IMAGE, None)
    assert "*/*.safetensors" in cpu["allow_patterns"] and "*.fp16.safetensors" in cpu["ignore_patterns"]
    gpu = hub.download_patterns(hub.TEXT_TO_IMAGE, "fp16")
    assert "*/*.fp16.safetensors" in gpu["allow_patterns"]
    assert "allow_patterns" not in hub.download_patterns(hub.CAUSAL_LM, None)


# ---- the catalog's hub entries and user-added ids ---------------------------------------------

def test_catalog_entries_record_memory_defaults_and_device() -> None:
    by_id = {e.repo_id: e for e in HUB_MODELS}
    assert by_id["stabilityai/sdxl-turbo"].suits == "cuda"
    assert by_id["stabilityai/sd-turbo"].suits == "any" and by_id["stabilityai/sd-turbo"].defaults["steps"] == 1
    assert all(e.memory_gb > 0 and e.download_gb > 0 and e.defaults for e in HUB_MODELS)
    assert not any(e.device_map_auto for e in HUB_MODELS)  # all fit one GPU


def test_user_added_hub_ids_join_the_catalog(weights_dir: Path, empty_cache: Path) -> None:
    try:
        spec = add_hub_model(" someone/my-sd ", "text-to-image")
        assert (spec.id, spec.tab, spec.family, spec.source, spec.cached) == (
            "someone/my-sd", "image", "diffusion", "hub", False)
        add_hub_model("someone/my-sd", "text-to-image")
        assert [s.id for s in user_hub_specs()] == ["someone/my-sd"]
        assert "someone/my-sd" in [s.id for s in build_catalog(weights_dir)]
        with pytest.raises(ValueError, match="must be one of"):
            add_hub_model("someone/other", "classification")
        with pytest.raises(ValueError, match="not a Hugging Face model id"):
            add_hub_model("no slash", "text-to-image")
    finally:
        remove_hub_model("someone/my-sd")


def test_the_download_probe_is_the_start_up_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    """hub_reachable asks environment.probe (one probe for start-up and downloads) at the endpoint."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    monkeypatch.setattr(hub_checks, "hub_endpoint", lambda: f"http://127.0.0.1:{port}")
    asked: list[tuple] = []
    real_probe = environment.probe
    monkeypatch.setattr(hub_checks, "probe", lambda *args: asked.append(args) or real_probe(*args))
    try:
        assert hub.hub_reachable(timeout=2.0) == (True, f"127.0.0.1:{port} answered")
    finally:
        server.close()
    reachable, detail = hub.hub_reachable(timeout=2.0)
    assert reachable is False and detail.startswith(f"127.0.0.1:{port} unreachable")
    assert asked == [("127.0.0.1", port, 2.0)] * 2
