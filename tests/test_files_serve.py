"""Files handed out from memory land where Gradio's own cache copy would: same folder, same name."""

from __future__ import annotations

from pathlib import Path

import pytest
from gradio import utils

from aigc_demo.ui.files import serve_bytes, serve_file


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    return Path(utils.get_upload_folder())


def test_bytes_are_served_like_a_file_copy(cache: Path, tmp_path: Path) -> None:
    data = b"\\x89PNG not really, but bytes all the same"
    staged = tmp_path / "digits-grid-35-seed42.png"
    staged.write_bytes(data)
    from_file = serve_file(staged)
    from_bytes = serve_bytes(data, "digits-grid-35-seed42.png")
    assert from_bytes == str(Path(from_file).resolve())
    assert Path(from_bytes).read_bytes() == data and Path(from_bytes).is_relative_to(cache.resolve())
    assert serve_bytes(data, "digits-grid-35-seed42.png") == from_bytes  # again: the same file, kept
    other = serve_bytes(b"other bytes", "digits-grid-35-seed42.png")
    assert other != from_bytes and Path(other).read_bytes() == b"other bytes"
    assert not list(Path(from_bytes).parent.glob(".*.part"))  # no half-written leftovers
