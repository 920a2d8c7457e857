"""Model ids a visitor may pick, and the one place they are turned into folders or hub ids.

Every picker (Digits, Text, Code, Image, Fine-tune) lists ids, never server paths:
- a shipped model: its folder name under the weights folder (`dcgan-mnist`);
- the visitor's own saved model: `yours/<name>`, found in *this visitor's* folder only;
- a model another visitor published (only when the operator publishes user models):
  `shared/<tag>/<name>`, where the tag is a hash of the owner's session, never the session;
- a Hugging Face id of the form `owner/name`;
- a folder path on the server, only when the operator sets AIGC_ALLOW_LOCAL_PATHS=1;
- `remote:<host:port>/<model id>`: a model of one of the configured inference servers.

Anything else is refused with one message (`REFUSED`) that is the same whether or not a file
or folder of that name exists, so the pickers cannot be used to probe the server's disk.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from aigc_demo.engines.registry import is_remote_ref, registry, split_ref
from aigc_demo.errors import UserError

YOURS = "yours"
SHARED = "shared"
MAX_ID_CHARS = 200
REFUSED = ("That model is not one this app offers you: pick one from the list, one of your saved models "
           "(yours/<name>), or type a Hugging Face id such as owner/name.")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TAG = re.compile(r"^[0-9a-f]{12}$")


@dataclass(frozen=True)
class ModelScope:
    """What one visitor may pick from: set by the app for each request."""

    weights_dir: str
    user_models_dir: str = ""
    session: str | None = None
    allow_local_paths: bool = False
    publish_user_models: bool = False


def owner_tag(session: str) -> str:
    """A short public stand-in for a session id (ids of published models show this, not the id)."""
    return hashlib.sha256(session.encode()).hexdigest()[:12]


def listed_id(spec: Any, session: str | None) -> str:
    """The id a picker shows for a catalog entry (never a server path)."""
    if spec.source == "hub":
        return str(spec.repo_id or spec.id)
    if spec.source == "remote":  # remote:<host:port>/<model id>, as the engine lists it
        return str(spec.id)
    folder = Path(str(spec.folder))
    if spec.source == "user":
        owner = folder.parent.name
        if session and owner == session:
            return f"{YOURS}/{folder.name}"
        return f"{SHARED}/{owner_tag(owner)}/{folder.name}"
    return folder.name


def _refuse() -> UserError:
    return UserError(REFUSED)


def _looks_like_path(text: str) -> bool:
    return (text.startswith(("/", ".", "~", "\\")) or os.path.isabs(text) or text.count("/") > 1
            or "\\" in text or ":" in text)


def _shipped(scope: ModelScope, name: str) -> str:
    if not _NAME.match(name) or name.startswith(("_", ".")):
        raise _refuse()
    folder = Path(scope.weights_dir) / name
    if not folder.is_dir():
        raise _refuse()
    return str(folder)


def _users(scope: ModelScope, parts: list[str]) -> str:
    root = Path(scope.user_models_dir) if scope.user_models_dir else None
    if root is None:
        raise _refuse()
    if parts[0] == YOURS and len(parts) == 2:
        owner, name = scope.session, parts[1]
    elif parts[0] == SHARED and len(parts) == 3 and scope.publish_user_models and _TAG.match(parts[1]):
        name = parts[2]
        owner = next((p.name for p in root.iterdir() if p.is_dir() and owner_tag(p.name) == parts[1]), None) \
            if root.is_dir() else None
    else:
        raise _refuse()
    if not owner or not _NAME.match(name):
        raise _refuse()
    folder = root / owner / name
    if not (folder / "config.json").is_file():
        raise _refuse()
    return str(folder)


def _hub(text: str) -> str:
    if text.count("/") != 1:
        raise _refuse()
    try:
        validate_repo_id(text)
    except HFValidationError:
        raise _refuse() from None
    return text


def resolve_model_id(ref: Any, scope: ModelScope) -> str:
    """A picked id -> a folder path (shipped, the visitor's own) or a hub id; UserError(REFUSED) else."""
    if ref is None or (isinstance(ref, str) and not ref.strip()):
        raise UserError("Pick a model first.")
    if not isinstance(ref, str) or len(ref) > MAX_ID_CHARS or any(ord(c) < 32 for c in ref):
        raise _refuse()
    text = ref.strip()
    if is_remote_ref(text):  # a configured engine's model: the registry checks it is listed when used
        host, _model = split_ref(text) if "/" in text else ("", "")
        if host not in registry.hosts():
            raise _refuse()
        return text
    parts = text.split("/")
    if parts[0] in (YOURS, SHARED):
        return _users(scope, parts)
    if _looks_like_path(text):
        if not scope.allow_local_paths:
            raise _refuse()
        return str(Path(text).expanduser().resolve())
    if len(parts) == 1:
        return _shipped(scope, text)
    return _hub(text)


def public_text(text: str, user_models_dir: str, weights_dir: str | None = None) -> str:
    """`text` (e.g. a loaded model's cache key) with server folders replaced by ids: a shipped
    model by its name, a visitor's model by `visitor/<tag>/<name>` (the tag hides the session)."""
    roots = {user_models_dir, str(Path(user_models_dir).resolve())} if user_models_dir else set()
    for root in sorted(roots, key=len, reverse=True):
        pattern = re.escape(root.rstrip("/")) + r"/([A-Za-z0-9_-]{1,64})/"
        text = re.sub(pattern, lambda m: f"visitor/{owner_tag(m.group(1))}/", text)
    if weights_dir:
        for root in sorted({weights_dir, str(Path(weights_dir).resolve())}, key=len, reverse=True):
            text = text.replace(root.rstrip("/") + "/", "")
    return text
