"""The gallery's HTML (escaped, no server paths, availability, hub links) and the availability
check behind the pickers' labels and the note beside Generate; no browser needed."""

from __future__ import annotations

import html
from pathlib import Path

import pytest

from aigc_demo.catalog import ModelSpec, build_catalog, hub_specs
from aigc_demo.services.availability import check
from aigc_demo.ui.availability import generate_view, picker_label
from aigc_demo.ui.cards import gallery_html
from tests.factories import HOSTILE_TITLE, make_model_folder

TABS = ["gallery", "digits", "text", "code", "image", "finetune", "system"]


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import huggingface_hub

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))  # empty


def test_card_values_are_escaped_and_samples_inlined(tmp_path: Path) -> None:
    folder = make_model_folder(tmp_path / "w" / "evil", title=HOSTILE_TITLE, task="image-generation",
                               family="gan", tab="digits", description="<script>alert(1)</script>",
                               sample_text="if a < b: pass")
    page = gallery_html(build_catalog(tmp_path / "w", include_hub=False), TABS)
    assert "<img src=x" not in page and "<script>" not in page
    assert html.escape(HOSTILE_TITLE, quote=True) in page
    assert "if a &lt; b: pass" in page
    assert 'src="data:image/webp;base64,' in page
    assert str(folder) not in page and str(tmp_path) not in page  # no server path in the page
    assert '<p id="gallery-count" data-some="{count} model(s)"' in page and ">1 model(s)<" in page
    assert 'data-tab="digits"' in page


def test_hub_cards_show_availability_and_link() -> None:
    page = gallery_html(hub_specs(), TABS)
    assert "not downloaded · 5.2 GB" in page  # SD-Turbo
    assert ('<a href="https://huggingface.co/stabilityai/sd-turbo" target="_blank" '
            'rel="noopener noreferrer">') in page
    assert page.count('class="avail avail-missing"') == len(hub_specs())


def test_a_tab_this_build_lacks_gets_a_note_not_a_button(tmp_path: Path) -> None:
    make_model_folder(tmp_path / "m", title="M", task="classification", family="classifier", tab="nowhere")
    page = gallery_html(build_catalog(tmp_path, include_hub=False), TABS)
    assert "data-tab=" not in page and "nowhere" in page


def test_picker_labels_say_whether_a_hub_model_is_here() -> None:
    sd = next(spec for spec in hub_specs() if spec.id == "stabilityai/sd-turbo")
    assert picker_label(sd) == "SD-Turbo (Hub · not downloaded · 5.2 GB)"
    sd.cached = True
    assert picker_label(sd) == "SD-Turbo (Hub · downloaded)"
    local = ModelSpec(id="x", title="Local one", task="text-generation", family="gpt", source="shipped")
    assert picker_label(local) == "Local one"


def test_availability_of_folders_and_hub_ids(tmp_path: Path) -> None:
    assert check("") is None
    here = check(str(tmp_path))
    assert here.downloaded and here.runnable and not here.hub
    gone = check(str(tmp_path / "missing"))
    assert not gone.downloaded and not gone.runnable
    sd = check("stabilityai/sd-turbo")
    assert sd.hub and not sd.downloaded and sd.offline and not sd.runnable and sd.download_gb == 5.2
    assert sd.hub_url == "https://huggingface.co/stabilityai/sd-turbo"
    assert check("not a model id!").invalid


def test_generate_view_offline_online_and_ready(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aigc_demo import settings
    from aigc_demo.ui import model_refs

    # the shipped weights, whatever app a test built last in this process
    monkeypatch.setattr(model_refs, "_settings", None)
    monkeypatch.setattr(settings, "_current", settings.read_settings())
    ready = generate_view("gpt-shakespeare", "Generate")  # a shipped model, listed by its folder name
    assert (ready.note, ready.label, ready.variant, ready.interactive) == ("", "Generate", "primary", True)
    offline = generate_view("stabilityai/sd-turbo", "Generate")
    assert not offline.interactive and "Not downloaded (5.2 GB)" in offline.note and "offline" in offline.note
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    online = generate_view("stabilityai/sd-turbo", "Generate")
    assert online.interactive and online.label == "Download and generate" and online.variant == "secondary"
    assert "downloads 5.2 GB" in online.note
    unlisted = generate_view(str(tmp_path), "Generate")  # a server path is not a listed id
    assert not unlisted.interactive and "not a model this app can run here" in unlisted.note
