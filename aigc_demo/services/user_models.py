"""The visitor's own models: save a job's export under a name, list, zip, push to the Hub.

Saved models live in `<user_models_dir>/<session>/<name>` (never among the shipped weights) and
are seen by that session only, unless the operator publishes them. Nothing here knows about
jobs: the job manager says which folder a job exported to and whether it may be saved.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
import zipfile
from pathlib import Path

from aigc_demo.catalog import validate_repo_id
from aigc_demo.errors import UserError
from aigc_demo.hub import hub_offline
from aigc_demo.modelcard import GALLERY_KEY
from aigc_demo.services.storage import Storage, folder_bytes
from aigc_demo.services.visitors import is_session_id
from aigc_demo.training.export_mark import EXPORT_MARK

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SKIPPED = ("checkpoint*", "*.tmp", EXPORT_MARK)  # never copied, zipped or pushed


def visible_dirs(root: Path, session: str | None, publish: bool) -> list[str]:
    """The model folders a session sees: its own, or everyone's when publishing is on."""
    if publish:
        return [str(p) for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []
    if not is_session_id(session):
        return []
    own = root / str(session)
    return [str(own)] if own.is_dir() else []


def list_models(folder: Path) -> list[Path]:
    """The saved models in one session's folder."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []


def save_export(source: Path, own: Path, name: str, base_title: str, storage: Storage, session: str,
                shipped_names: tuple[str, ...] = ()) -> Path:
    """Copy an exported model folder to `own/name` (the session's model folder); never overwrites."""
    name = (name or "").strip()
    if not _NAME.match(name):
        raise UserError("Name the model with letters, digits, '-', '_' or '.' (up to 64 characters, "
                        "starting with a letter or digit), e.g. my-gan.")
    if name in shipped_names:
        raise UserError(f"{name} is the name of a shipped model: pick another name.")
    target = own / name
    if target.exists():
        raise UserError(f"You already have a model named {name}: pick another name.")
    storage.check_quota(session, folder_bytes(source))
    staging = own / f".{name}.{secrets.token_hex(3)}.tmp"
    shutil.copytree(source, staging, ignore=shutil.ignore_patterns(*SKIPPED))
    retitle_card(staging, name, base_title)
    try:
        os.rename(staging, target)  # fails if `target` appeared meanwhile: never overwrite
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"You already have a model named {name}: pick another name.") from None
    return target


def check_own(folder: str | Path, own: Path) -> Path:
    """`folder` resolved, if it lies in the session's own model folder; UserError otherwise."""
    source = Path(folder).resolve()
    if own.resolve() not in source.parents:
        raise UserError("You can download only your own saved models.")
    return source


def zip_folder(source: Path, name: str, dest: str | Path | None = None) -> Path:
    """A zip of a model folder in Hugging Face layout (`name/...`, no checkpoints), written in
    `dest` (the caller deletes it once served) or else in a new temp folder."""
    target = Path(dest if dest is not None else tempfile.mkdtemp(prefix="aigc-finetune-")) / f"{name}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source)
            if path.is_file() and not rel.parts[0].startswith("checkpoint") and rel.name != EXPORT_MARK:
                archive.write(path, f"{name}/{rel.as_posix()}")
    return target


def retitle_card(folder: Path, name: str, base_title: str) -> None:
    """Give a saved model its visitor-chosen name in the gallery."""
    from huggingface_hub import ModelCard

    path = folder / "README.md"
    if not path.is_file():
        return
    card = ModelCard.load(path)
    gallery = dict(getattr(card.data, GALLERY_KEY, None) or {})
    gallery["title"] = f"{name} (fine-tuned {base_title})"
    gallery["description"] = f"Fine-tuned in this app from {base_title}."
    setattr(card.data, GALLERY_KEY, gallery)
    card.save(path)


def push_to_hub(folder: str | Path, repo_id: str, token: str, private: bool = True) -> str:
    """Upload a saved model folder to the Hub with the visitor's token; the repo's URL."""
    repo_id = validate_repo_id(repo_id)
    if not (token or "").strip():
        raise UserError("Paste a Hugging Face access token with write permission (huggingface.co/settings/tokens).")
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise UserError("Save the model first, then push it.")
    if hub_offline():
        raise UserError("The Hugging Face Hub cannot be reached from this machine (it is offline): download "
                        "the zip and upload it from a machine that is online, e.g. with `hf upload`.")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(token=token.strip())
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, ignore_patterns=list(SKIPPED),
                          commit_message="Upload a model fine-tuned in the AIGC Gallery")
    except HfHubHTTPError as err:
        raise UserError(f"The Hub refused the upload: {err}") from None
    except OSError as err:
        raise UserError(f"The Hub could not be reached ({err}).") from None
    return f"https://huggingface.co/{repo_id}"
