"""aigc_demo/settings.py: every AIGC_* variable read once, validated, documented in one table,
and the only place (with environment.py) that reads the environment."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from aigc_demo import settings as app_settings
from aigc_demo.settings import (JobSettings, OperatorSettings, ServeSettings, Settings, install, install_serve,
                                read_settings)

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "aigc_demo"
VARIABLE = re.compile(r"\b(AIGC_[A-Z_]+[A-Z]|SPACE_HOST|GRADIO_SERVER_(?:NAME|PORT))\b")


def _table_variables(text: str) -> set[str]:
    return {name for line in text.splitlines() if line.startswith("| ") for name in VARIABLE.findall(line)}


def test_only_settings_and_environment_read_the_environment() -> None:
    readers = sorted(str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py")
                     if re.search(r"os\.environ|getenv", p.read_text()))
    assert readers == ["aigc_demo/environment.py", "aigc_demo/settings.py"]


def test_every_variable_read_is_in_the_docstring_table_and_the_docs() -> None:
    source = (PACKAGE / "settings.py").read_text()
    code = source[source.index('"""', 3) + 3:]  # after the module docstring
    read = set(VARIABLE.findall(code)) - {"AIGC_"}
    documented = _table_variables(app_settings.__doc__ or "")
    readme = (ROOT / "docs" / "configuration.md").read_text()
    assert read and read <= documented, sorted(read - documented)
    assert documented <= read, f"documented but never read: {sorted(documented - read)}"
    assert not [name for name in documented if f"`{name}`" not in readme], "docs/configuration.md misses some variables"


def test_defaults_without_any_variable() -> None:
    settings = Settings.from_env({})
    assert settings.serve == ServeSettings.from_env({})
    assert (settings.serve.host, settings.serve.port, settings.serve.device) == ("127.0.0.1", 7860, "auto")
    assert settings.operator == OperatorSettings() and settings.jobs == JobSettings()
    assert (settings.data_dir, settings.image_dir, settings.torch_compile, settings.lang) == (None, None, False, "en")


def test_values_are_read_and_typed() -> None:
    env = {"AIGC_PORT": "9000", "GRADIO_SERVER_PORT": "1234", "AIGC_SHARE": "yes", "AIGC_DEVICE": "CPU",
           "AIGC_FT_MAX_JOBS": "3", "AIGC_FT_DOWNLOADS": "off", "AIGC_RUNS_DIR": "/tmp/r",
           "AIGC_TORCH_COMPILE": "1", "AIGC_HUB_ALLOW": "Catalog", "SPACE_HOST": "me-app.hf.space, other",
           "AIGC_SESSION_SECRET": "s3cret", "AIGC_ADMIN_TOKEN": "t0ken"}
    settings = Settings.from_env(env)
    assert (settings.serve.port, settings.serve.share, settings.serve.device) == (9000, True, "cpu")
    assert settings.jobs.max_concurrent == 3 and settings.jobs.allow_download is False
    assert settings.jobs.user_models_dir == "/tmp/r/user_models"  # under AIGC_RUNS_DIR unless set
    assert settings.torch_compile and settings.operator.hub_allow == "catalog"
    assert settings.space_host == "me-app.hf.space"
    assert "s3cret" not in repr(settings) and "t0ken" not in repr(settings)


@pytest.mark.parametrize("env, says", [
    ({"AIGC_SHARE": "maybe"}, "AIGC_SHARE must be one of"),
    ({"AIGC_PORT": "70000"}, "AIGC_PORT must be between 1 and 65535"),
    ({"AIGC_DEVICE": "tpu"}, "AIGC_DEVICE must be one of auto, cuda, mps, cpu"),
    ({"AIGC_FT_MAX_STEPS": "lots"}, "AIGC_FT_MAX_STEPS must be a number"),
    ({"AIGC_FT_MAX_JOBS": "1.5"}, "AIGC_FT_MAX_JOBS must be a whole number"),
    ({"AIGC_HUB_ALLOW": "some"}, "AIGC_HUB_ALLOW must be one of any, catalog"),
    ({"AIGC_MEMORY_BUDGET_GB": "0"}, "AIGC_MEMORY_BUDGET_GB must be between"),
    ({"AIGC_LLM_SERVERS": "http://gpu:8000"}, "must end with /v1"),
])
def test_a_bad_value_stops_start_up_with_one_line_naming_it(env: dict[str, str], says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        Settings.from_env(env)
    with pytest.raises(SystemExit, match="Environment setting: .*" + re.escape(says)):
        read_settings(env)


def test_the_served_settings_reach_the_device_choice_without_writing_the_environment() -> None:
    from aigc_demo.device import requested_device

    before = os.environ.get("AIGC_DEVICE")
    old = install(Settings.from_env({}))
    try:
        assert requested_device() == "auto"
        install_serve(dataclasses.replace(app_settings.current().serve, device="cpu"))
        assert requested_device() == "cpu"
        assert os.environ.get("AIGC_DEVICE") == before
    finally:
        install(old)


def test_operator_settings_can_be_swapped_for_a_test() -> None:
    old = app_settings.configure(OperatorSettings(admin_token="x", hub_allow="catalog"))
    try:
        assert app_settings.operator_settings().hub_allow == "catalog"
        assert app_settings.current().operator.admin_enabled
    finally:
        app_settings.configure(old)
    assert app_settings.operator_settings() == old
