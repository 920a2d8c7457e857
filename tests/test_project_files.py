"""The README's promises: Space front matter matches the code, CI runs the README's test command,
the README is short and links to one docs/ page per topic, and docs/models.md quotes the cards."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import yaml

from aigc_demo.catalog import HUB_MODELS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ROOT / "docs"
TOPICS = ["configuration", "command-line", "benchmarks", "deploy-space", "public", "scale-out", "api",
          "code-layout", "models"]


def front_matter() -> dict:
    match = re.match(r"^---\n(.*?)\n---\n", README, re.S)
    assert match, "README.md must start with YAML front matter for Spaces"
    return yaml.safe_load(match.group(1))


def test_space_front_matter_is_complete_and_consistent() -> None:
    meta = front_matter()
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert (ROOT / meta["app_file"]).is_file()
    assert meta["license"] and 0 < len(meta["short_description"]) <= 60
    assert meta["models"] == [entry.repo_id for entry in HUB_MODELS]
    requirement = re.search(r"^gradio\[mcp\]>=([\d.]+)", (ROOT / "requirements.txt").read_text(), re.M)
    assert requirement and requirement.group(1) == meta["sdk_version"]
    assert metadata.version("gradio") == meta["sdk_version"]


def test_requirements_leave_torch_unpinned() -> None:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    torch_line = next(line for line in lines if line.startswith("torch"))
    assert "==" not in torch_line


def test_readme_is_short_with_both_commands_first() -> None:
    lines = README.splitlines()
    assert len(lines) <= 150
    first = "\n".join(lines[:60])
    assert "pip install -r requirements.txt && python app.py" in first and "python -m pytest tests" in first


def test_readme_links_one_existing_docs_page_per_topic() -> None:
    linked = re.findall(r"\]\(docs/([\w-]+)\.md[^)]*\)", README)
    assert set(TOPICS) <= set(linked), sorted(set(TOPICS) - set(linked))
    for name in set(linked):
        assert (DOCS / f"{name}.md").is_file(), name


def test_docs_links_and_images_resolve() -> None:
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)|src=\"([^\"]+)\"", page.read_text()):
            path = next(t for t in target if t)
            if not path.startswith(("http://", "https://")):
                assert (page.parent / path).resolve().exists(), f"{page.name}: {path}"


def test_ci_runs_exactly_the_readme_test_command() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README, re.S)
    commands = [line for block in blocks for line in block.splitlines() if line and not line.startswith("#")]
    test_command = next(c for c in commands if "pytest" in c)
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
    assert any("python app.py" in c for c in commands)


def test_screenshot_exists() -> None:
    shot = re.search(r"!\[[^\]]*\]\(([^)]+)\)", README)
    assert shot and (ROOT / shot.group(1)).is_file()


KEY_METRICS = {
    "dcgan-mnist": ["FID", "Conditional accuracy"],
    "vae-mnist-32d": ["Test NLL (IWAE)", "Test ELBO"],
    "vae-mnist-2d": ["Test NLL (IWAE)", "Test ELBO"],
    "mnist-classifier": ["Test accuracy"],
    "gpt-shakespeare": ["val loss"],
    "gpt-python": ["val bits per byte"],
    "diffusion-mnist": ["FID", "FID / floor", "Conditional accuracy", "Sampling time"],
}


def test_docs_model_table_matches_the_model_cards() -> None:
    """The figures docs/models.md quotes are the ones the eval command recorded in each card."""
    from aigc_demo.catalog import discover_local

    models = (DOCS / "models.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `weights/([\w-]+)` \|(.*)$", models, re.M)}
    specs = {s.id: s for s in discover_local(ROOT / "weights")}
    assert set(rows) == set(specs) == set(KEY_METRICS)
    for name, wanted in KEY_METRICS.items():
        measured = {m.name: m.value for m in specs[name].metrics}
        for metric in wanted:
            assert f"{measured[metric]:g}" in rows[name], f"{name}: docs/models.md does not show {metric} {measured[metric]}"
