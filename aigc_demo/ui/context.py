"""What every tab's build function receives: the settings and a handle on the tab strip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from aigc_demo.settings import ServeSettings


@dataclass
class AppContext:
    settings: ServeSettings
    tab_ids: list[str]  # the tabs this build of the app has, in order
    tabs: Any = None  # the gr.Tabs, so a button can switch tabs
    # Folders of models saved by users. In the app this is a ui.sessions.SessionDirs: read inside an
    # event handler it holds the current visitor's folder (and published ones), so pass it as is.
    user_dirs: list[str] = field(default_factory=list)
    session: Any = None  # gr.BrowserState with the visitor's id (ui/sessions.py)
    models_changed: Any = None  # gr.State bumped when a visitor saves a model: pickers refresh
    pickers: list[tuple[Any, Callable[[], list[tuple[str, str]]]]] = field(default_factory=list)
    links: dict[str, Any] = field(default_factory=dict)  # tab id -> ui.share.LinkTarget (share links)
    gallery_view: Any = None  # the gallery's cards: a card's Open click names its tab and part (family)

    def register_picker(self, component: Any, choices: Callable[[], list[tuple[str, str]]]) -> Any:
        """Refresh `component`'s choices with `choices()` on page load and after a model is saved,
        so a visitor's own models appear in it (call `choices` uses ctx.user_dirs)."""
        self.pickers.append((component, choices))
        return component
