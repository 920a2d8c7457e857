"""Catalog discovery: model cards are the source of truth; a broken card never breaks the list."""

from __future__ import annotations

from pathlib import Path

import pytest

from aigc_demo.catalog import HUB_MODELS, build_catalog, discover_local, hub_specs, safetensors_size
from aigc_demo.modelcard import read_card_metadata, update_card_metrics
from aigc_demo.catalog import format_parameters
from aigc_demo.services.gallery import list_models
from tests.factories import make_broken_folder, make_model_folder


def test_discovers_each_folder_with_card_fields(catalog_dir: Path) -> None:
    specs = {s.id: s for s in discover_local(catalog_dir)}
    assert set(specs) == {"toy-gan", "toy-gpt", "broken-model"}
    gan = specs["toy-gan"]
    assert (gan.title, gan.task, gan.family, gan.tab, gan.source) == (
        "Toy GAN", "image-generation", "gan", "digits", "shipped")
    assert gan.license == "mit"
    assert gan.metrics[0].name == "FID" and gan.metrics[0].value == 3.5
    assert gan.metrics[0].lower_is_better is True
    assert gan.sample_image and gan.sample_image.endswith("sample.png")
    assert specs["toy-gpt"].sample_image is None
    assert gan.error is None


def test_parameter_count_and_size_come_from_the_safetensors_header(catalog_dir: Path) -> None:
    params, size_mb = safetensors_size(catalog_dir / "toy-gan")
    assert params == 10 * 20 + 20
    file_bytes = (catalog_dir / "toy-gan" / "model.safetensors").stat().st_size
    assert size_mb == round(file_bytes / 2**20, 2)
    assert safetensors_size(catalog_dir / "broken-model") == (None, None)


def test_malformed_card_gives_an_error_in_its_place_not_a_crash(catalog_dir: Path) -> None:
    specs = discover_local(catalog_dir)
    broken = [s for s in specs if s.id == "broken-model"]
    assert len(broken) == 1 and broken[0].error
    assert "YAML header cannot be read" in broken[0].error
    assert "\n" not in broken[0].error
    assert specs[-1].id == "broken-model"  # usable models are listed first


@pytest.mark.parametrize("card, message", [
    (None, "is missing"),
    ("---\nlicense: mit\n---\n# no gallery block\n", "has no `aigc_gallery` block"),
    ("---\naigc_gallery:\n  title: X\n---\n", "lacks task, family"),
    ("no front matter at all", "has no `aigc_gallery` block"),
])
def test_each_kind_of_bad_card_is_named(tmp_path: Path, card: str | None, message: str) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    if card is not None:
        (folder / "README.md").write_text(card)
    [spec] = discover_local(tmp_path)
    assert spec.error and message in spec.error


def test_hidden_folders_files_and_missing_dir_are_skipped(tmp_path: Path) -> None:
    (tmp_path / ".cache").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    assert discover_local(tmp_path) == []
    assert discover_local(tmp_path / "nope") == []


def test_hub_models_report_their_cache_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert [s.cached for s in hub_specs()] == [False] * len(HUB_MODELS)
    # lay one repo out in the cache the way huggingface_hub stores a download
    entry = HUB_MODELS[0]
    repo_dir = tmp_path / f"models--{entry.repo_id.replace('/', '--')}"
    (repo_dir / "snapshots" / "abc").mkdir(parents=True)
    (repo_dir / "snapshots" / "abc" / entry.probe_file).write_text("{}")
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text("abc")
    specs = hub_specs()
    assert specs[0].cached is True and specs[0].source == "hub" and specs[0].repo_id == entry.repo_id
    assert [s.cached for s in specs[1:]] == [False] * (len(HUB_MODELS) - 1)


def test_filters_by_task_and_source(catalog_dir: Path) -> None:
    images = list_models(catalog_dir, task="image-generation", source="shipped")
    assert [s.id for s in images] == ["toy-gan"]
    hub_code = list_models(catalog_dir, task="code-generation", source="hub")
    assert hub_code and all(s.task == "code-generation" and s.source == "hub" for s in hub_code)
    with pytest.raises(ValueError, match="unknown task 'poetry'"):
        list_models(catalog_dir, task="poetry")


def test_user_models_are_listed_after_shipped_ones(catalog_dir: Path, tmp_path: Path) -> None:
    make_model_folder(tmp_path / "mine", title="My GAN", task="image-generation", family="gan",
                      tab="digits")
    specs = build_catalog(catalog_dir, user_dirs=[tmp_path], include_hub=False)
    assert [s.source for s in specs] == ["shipped"] * len(discover_local(catalog_dir)) + ["user"]


def test_update_card_metrics_keeps_the_rest_of_the_card(tmp_path: Path) -> None:
    folder = make_model_folder(tmp_path / "m", title="M", task="image-generation", family="vae",
                               tab="digits")
    update_card_metrics(folder, [{"name": "NLL", "value": 84.2, "unit": "nats"}])
    meta = read_card_metadata(folder)
    assert meta["aigc_gallery"]["title"] == "M"
    assert meta["aigc_gallery"]["metrics"] == [{"name": "NLL", "value": 84.2, "unit": "nats"}]
    assert "A test fixture." in (folder / "README.md").read_text()


def test_a_card_is_parsed_once_until_its_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aigc_demo import modelcard

    folder = make_model_folder(tmp_path / "m", title="M", task="image-generation", family="vae", tab="digits")
    parsed: list[Path] = []
    real_parse = modelcard._parse_card
    monkeypatch.setattr(modelcard, "_parse_card", lambda path, text: parsed.append(path) or real_parse(path, text))
    first = read_card_metadata(folder)
    first["aigc_gallery"]["title"] = "changed by a caller"  # a copy: the remembered header stays
    assert read_card_metadata(folder)["aigc_gallery"]["title"] == "M"
    assert len(parsed) == 1  # the second read came from memory
    update_card_metrics(folder, [{"name": "NLL", "value": 84.2, "unit": "nats"}])  # the file changes
    assert read_card_metadata(folder)["aigc_gallery"]["metrics"][0]["value"] == 84.2
    assert len(parsed) == 2
    (folder / "README.md").unlink()
    with pytest.raises(modelcard.ModelCardError, match="is missing"):
        read_card_metadata(folder)


@pytest.mark.parametrize("count, text", [(None, "?"), (999, "999"), (20_000, "20K"),
                                         (124_000_000, "124M"), (1_300_000_000, "1.3B")])
def test_format_parameters(count: int | None, text: str) -> None:
    assert format_parameters(count) == text


def test_models_for_tab_lists_local_ids_then_hub_ids(catalog_dir: Path) -> None:
    from aigc_demo.services.gallery import models_for_tab

    text = models_for_tab(catalog_dir, "text")
    assert text[0] == ("Toy GPT", "toy-gpt")  # an id, never a server path
    assert ("GPT-2 (124M) (Hub)", "openai-community/gpt2") in text
    assert models_for_tab(catalog_dir, "digits", families=("vae",)) == []
    assert [ref for _, ref in models_for_tab(catalog_dir, "digits")] == ["toy-gan"]
