"""The launched app through gradio_client: the gallery and System endpoints."""

from __future__ import annotations

import urllib.request
from pathlib import Path


def test_page_is_served_without_outside_assets(app_url: str) -> None:
    with urllib.request.urlopen(app_url, timeout=30) as answer:
        page = answer.read().decode()
    assert answer.status == 200
    assert "AIGC Gallery" in page
    assert "fonts.googleapis.com" not in page  # the theme uses system fonts only


def test_models_endpoint_lists_the_catalog(client, weights_dir: Path) -> None:
    models = client.predict(task="all", source="all", api_name="/models")
    ids = [m["id"] for m in models]
    assert {"tiny-gan", "toy-gpt", "broken-model"} <= set(ids)
    assert "openai-community/gpt2" in ids
    gan = next(m for m in models if m["id"] == "tiny-gan")
    from aigc_demo.catalog import safetensors_size

    assert "folder" not in gan  # no server paths in the API
    assert gan["sample_image"] is None or gan["sample_image"].startswith("data:image/")
    assert gan["parameters"] == safetensors_size(weights_dir / gan["id"])[0] > 1000
    assert gan["metrics"][0]["value"] == 3.5 and gan["tab"] == "digits"
    broken = next(m for m in models if m["id"] == "broken-model")
    assert "YAML header cannot be read" in broken["error"]


def test_models_endpoint_filters(client) -> None:
    shipped_images = client.predict(task="image-generation", source="shipped", api_name="/models")
    assert [m["id"] for m in shipped_images] == ["tiny-diffusion", "tiny-gan", "tiny-vae-2d", "tiny-vae-4d"]
    hub = client.predict(task="all", source="hub", api_name="/models")
    assert hub and {m["source"] for m in hub} == {"hub"}


def test_bad_filter_is_a_clear_error(client) -> None:
    import pytest
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="unknown task 'poetry'"):
        client.predict(task="poetry", source="all", api_name="/models")


def test_system_endpoint_reports_device_hub_and_versions(client) -> None:
    report = client.predict(api_name="/system")
    assert report["device"]["device"] == "cpu" and report["device"]["cpu_threads"] >= 1
    assert report["hub"]["offline_mode"] is True
    assert report["libraries"]["gradio"].startswith("6.")
    assert isinstance(report["loaded_models"], list)


def test_unload_is_refused_without_an_admin_token(client) -> None:
    import pytest
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="Admin actions are off"):  # AIGC_ADMIN_TOKEN is not set in tests
        client.predict(None, None, api_name="/unload")
