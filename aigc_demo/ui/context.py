"""What every tab's build function receives: the settings and a handle on the tab strip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aigc_demo.settings import ServeSettings


@dataclass
class AppContext:
    settings: ServeSettings
    tab_ids: list[str]  # the tabs this build of the app has, in order
    tabs: Any = None  # the gr.Tabs, so a button can switch tabs
    user_dirs: list[str] = field(default_factory=list)  # folders of models saved by users
