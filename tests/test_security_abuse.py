"""One visitor must not degrade the server for everyone: what an attacker did, done again.

- `/unload` and `/unload_all` are for the operator (AIGC_ADMIN_TOKEN); without a token they are
  hidden and refused.
- Hub ids added in the Image tab are the visitor's own, and capped per visitor.
- The fine-tune queue counts jobs per client address, so several clients of one person cannot
  fill it; X-Forwarded-For counts only behind a trusted proxy.
- Hub downloads are bounded (AIGC_HUB_MAX_DOWNLOAD_GB, checked from the file list before any
  download) and can be limited to the catalog (AIGC_HUB_ALLOW=catalog).
- One loaded copy per model: the look-inside view shares the weights.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import httpx
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from aigc_demo import settings as app_settings
from aigc_demo.settings import OperatorSettings
from tests.factories import TINY_TEXT


@pytest.fixture
def operator() -> Iterator:
    """Change operator settings for one test: `operator(admin_token=...)`; restored afterwards."""
    old = app_settings.configure(None)
    base = app_settings.operator_settings()

    def set_(**changes) -> OperatorSettings:
        new = dataclasses.replace(base, **changes)
        app_settings.configure(new)
        return new

    yield set_
    app_settings.configure(old)


# ---------------------------------------------------------------- admin actions

def test_admin_controls_are_hidden_and_refused_without_a_token(app_url: str, operator) -> None:
    operator(admin_token="")
    config = httpx.get(app_url + "config", timeout=60).json()
    admin_rows = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "system-admin"]
    assert admin_rows and admin_rows[0]["props"]["visible"] is False
    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match="Admin actions are off"):
        client.predict(None, "anything", api_name="/unload")
    with pytest.raises(AppError, match="Admin actions are off"):
        client.predict("anything", api_name="/unload_all")


def test_only_the_operator_token_unloads(app_url: str, weights_dir: Path, operator) -> None:
    from aigc_demo.loading import registry
    from aigc_demo.services.digits import load_gan

    operator(admin_token="s3cret-token")
    load_gan(weights_dir / "tiny-gan")
    loaded = len(registry.loaded())
    client = Client(app_url, verbose=False)
    for wrong in ("", "s3cret", "s3cret-token-and-more", None):
        with pytest.raises(AppError, match="not the admin token"):
            client.predict(wrong, api_name="/unload_all")
    assert len(registry.loaded()) == loaded, "a wrong token unloaded models"
    client.predict("s3cret-token", api_name="/unload_all")
    assert registry.loaded() == []


# ---------------------------------------------------------------- hub ids added per visitor

def test_hub_additions_are_per_visitor_and_capped(app_url: str, operator) -> None:
    operator(hub_additions_per_visitor=10, hub_allow="any")
    attacker, other = Client(app_url, verbose=False), Client(app_url, verbose=False)
    for i in range(10):
        attacker.predict(f"attacker/model-{i}", api_name="/add_image_model")
    with pytest.raises(AppError, match="the most one visitor can add"):
        attacker.predict("attacker/model-10", api_name="/add_image_model")
    mine = [m["id"] for m in attacker.predict(source="hub", api_name="/models")]
    assert sum(i.startswith("attacker/") for i in mine) == 10
    theirs = [m["id"] for m in other.predict(source="hub", api_name="/models")]
    assert not any(i.startswith("attacker/") for i in theirs), "one visitor's additions reached another"
    other.predict("other/model", api_name="/add_image_model")  # the cap is the attacker's alone


def test_catalog_only_servers_refuse_other_hub_ids(app_url: str, operator) -> None:
    from aigc_demo.hub import resolve

    operator(hub_allow="catalog")
    with pytest.raises(AppError, match="only the models of its catalog"):
        Client(app_url, verbose=False).predict("someone/huge-model", api_name="/add_image_model")
    with pytest.raises(ValueError, match="only the models of its catalog"):
        resolve("someone/huge-model")


# ---------------------------------------------------------------- the fine-tune queue

def test_several_clients_of_one_address_cannot_fill_the_queue(app_url: str, weights_dir: Path, operator) -> None:
    operator(jobs_per_client=1, trust_proxy=False)
    first = Client(app_url, verbose=False)
    second = Client(app_url, verbose=False, headers={"X-Forwarded-For": "203.0.113.9"})  # forged
    job = dict(model_ref="tiny-char-gpt", source_kind="text", text_path=None, files=None,
               text_value=TINY_TEXT * 3, steps_n=5000, batch_size=64, learning_rate=1e-3, sample_every_n=0,
               block=32, api_name="/finetune_start")  # minutes of training: still running
    first.predict(**job)
    try:
        with pytest.raises(AppError, match="Your network address already has 1 job"):
            second.predict(**job)
    finally:
        first.predict(api_name="/finetune_stop")  # it stops as soon as its process has started


def test_forwarded_for_counts_only_behind_a_trusted_proxy(operator) -> None:
    from aigc_demo.ui.sessions import client_address

    request = SimpleNamespace(headers={"x-forwarded-for": "198.51.100.1, 203.0.113.7"},
                              client=SimpleNamespace(host="10.0.0.2"))
    operator(trust_proxy=False)
    assert client_address(request) == "10.0.0.2"
    operator(trust_proxy=True)
    assert client_address(request) == "203.0.113.7"  # the hop the proxy added, not the forgeable first


# ---------------------------------------------------------------- hub download bounds (no network)

@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> dict:
    """An online Hub whose model_info lists files of given sizes; downloads fail the test."""
    import huggingface_hub
    from huggingface_hub.hf_api import RepoSibling

    from aigc_demo import hub, hub_download

    calls: dict = {"model_info": 0, "files": []}

    def model_info(self, repo_id, **kwargs):
        calls["model_info"] += 1
        assert kwargs.get("files_metadata") is True
        return SimpleNamespace(siblings=[RepoSibling(name, size=size) for name, size in calls["files"]])

    def no_download(*args, **kwargs):
        raise AssertionError("a download started although the size check should have refused it")

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub_download, "hub_reachable", lambda timeout=2.0: (True, "test"))
    monkeypatch.setattr(hub, "cached_snapshot", lambda repo_id, revision=None: None)
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", model_info)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_download)
    return calls


def test_a_model_over_the_download_cap_is_refused_before_downloading(fake_hub: dict, operator) -> None:
    from aigc_demo.hub import CAUSAL_LM, resolve

    operator(hub_max_download_gb=1.0, hub_allow="any")
    fake_hub["files"] = [("config.json", 700), ("model-00001.safetensors", 3 * 2**30),
                         ("model-00002.safetensors", 2 * 2**30), ("pytorch_model.bin", 5 * 2**30)]
    with pytest.raises(ValueError, match=r"someone/big-lm is 5\.0 GB to download; this server downloads at "
                                         r"most 1 GB per model \(AIGC_HUB_MAX_DOWNLOAD_GB\)"):
        resolve("someone/big-lm", kind=CAUSAL_LM)
    assert fake_hub["model_info"] == 1


def test_unknown_sizes_are_refused_when_downloads_are_capped(fake_hub: dict, operator) -> None:
    from aigc_demo.hub import CAUSAL_LM, resolve

    operator(hub_max_download_gb=1.0)
    fake_hub["files"] = [("config.json", None), ("model.safetensors", None)]
    with pytest.raises(ValueError, match="did not say how large"):
        resolve("someone/mystery", kind=CAUSAL_LM)


def test_pipelines_count_only_the_files_they_would_fetch(fake_hub: dict, operator) -> None:
    from aigc_demo.hub import TEXT_TO_IMAGE, download_size

    operator(hub_max_download_gb=1.0)
    fake_hub["files"] = [("model_index.json", 500), ("unet/diffusion_pytorch_model.safetensors", 300 * 2**20),
                         ("unet/diffusion_pytorch_model.fp16.safetensors", 150 * 2**20),
                         ("sd_full_checkpoint.safetensors", 4 * 2**30), ("unet/config.json", 900)]
    assert download_size("someone/sd", None, TEXT_TO_IMAGE, None) == 500 + 300 * 2**20 + 900


# ---------------------------------------------------------------- memory: one copy per model

def test_look_inside_shares_the_loaded_model(weights_dir: Path) -> None:
    """A look inside asks the model server that streams from the model: the web process loads
    no copy of its own, whichever way the folder is spelt."""
    from aigc_demo.loading import registry
    from aigc_demo.services import textgen

    ref = str(weights_dir / "tiny-char-gpt")
    registry.unload_all()
    served, _ = textgen.serve_causal_lm(ref, "cpu")
    textgen.look_inside(ref + "/", "To be or not", -1, 0, 0, device="cpu")  # another spelling
    textgen.look_inside(ref, "To be", None, None, None, device="cpu")  # defaults for None
    keys = [m["key"] for m in registry.loaded()]
    assert len(keys) == 1 and keys[0].startswith("causal-lm-served:"), keys
    assert served.restarts == 0
    # where a model is held here (ZeroGPU), its eager twin shares every weight tensor
    model, _ = textgen.load_causal_lm(ref, "cpu")
    twin, _ = textgen.load_causal_lm(ref, "cpu", eager=True)
    assert twin is not model
    assert all(a.data_ptr() == b.data_ptr() for a, b in zip(model.parameters(), twin.parameters()))
    registry.unload_all()


def test_cached_maps_count_against_the_memory_budget() -> None:
    import numpy as np

    from aigc_demo.loading import ModelRegistry

    registry = ModelRegistry(budget_bytes=3 * 2**20)
    for i in range(5):
        registry.get(f"map-{i}", lambda: np.zeros(2**20, dtype=np.uint8), "cpu")  # 1 MB each
    assert [m["key"] for m in registry.loaded()] == ["map-4", "map-3", "map-2"]
