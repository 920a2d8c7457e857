"""The pickers' ids -> what services load, for the visitor behind the current event.

The app installs its settings once (`install`); `resolve(ref)` then asks the one resolver in
services/model_ids.py with this visitor's session, so every tab accepts exactly the ids it lists.
Inside an event the settings are those of the app handling it (`app_context`), so two apps built
in one process (tests, a mounted second app) each keep their own models.
"""

from __future__ import annotations

from typing import Any

from gradio.context import LocalContext

from aigc_demo.services.jobs import get_manager
from aigc_demo.services.model_ids import ModelScope, resolve_model_id
from aigc_demo.settings import ServeSettings
from aigc_demo.settings import current as current_settings
from aigc_demo.ui import sessions

_settings: ServeSettings | None = None


def install(settings: ServeSettings) -> None:
    """Remember the app's settings (called once when the app is built)."""
    global _settings
    _settings = settings


_CURRENT = object()


def app_context() -> Any:
    """The AppContext of the app handling the current event (shell.build_app marks it); None outside."""
    return getattr(LocalContext.blocks.get(None), "aigc_ctx", None)


def scope(session: Any = _CURRENT) -> ModelScope:
    """What the visitor `session` (default: the one behind the current event) may pick from."""
    app = app_context()
    settings = app.settings if app is not None else _settings or current_settings().serve
    config = get_manager().config
    return ModelScope(weights_dir=settings.weights_dir, user_models_dir=config.user_models_dir,
                      session=sessions.current_session() if session is _CURRENT else session,
                      allow_local_paths=settings.public.allow_local_paths,
                      publish_user_models=config.publish_user_models)


def resolve(ref: Any, session: Any = _CURRENT) -> str:
    """A folder path or hub id for a picked id; UserError with one fixed message otherwise."""
    return resolve_model_id(ref, scope(session))


def resolve_or_none(ref: Any) -> str | None:
    """Like `resolve`, None instead of an error (for handlers that only adjust the page)."""
    try:
        return resolve(ref)
    except ValueError:
        return None
