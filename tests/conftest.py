"""Shared fixtures: a launched app on a free port, a gradio_client for it, a headless browser."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from pathlib import Path
from typing import Iterator

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("AIGC_DEVICE", "cpu")
# Fine-tune jobs, uploads and saved user models of the launched test app go to a temp folder.
os.environ.setdefault("AIGC_RUNS_DIR", __import__("tempfile").mkdtemp(prefix="aigc-test-runs-"))
# Built-in data of the launched test app (the Lab's MNIST and Tiny Shakespeare): tiny copies made below.
TEST_DATA = Path(__import__("tempfile").mkdtemp(prefix="aigc-test-data-"))
os.environ.setdefault("AIGC_DATA_DIR", str(TEST_DATA))

import pytest  # noqa: E402

from tests.factories import make_catalog_dir, make_tiny_corpus, make_tiny_mnist, make_weights_dir  # noqa: E402

if os.environ["AIGC_DATA_DIR"] == str(TEST_DATA):
    make_tiny_mnist(TEST_DATA / "mnist")
    make_tiny_corpus(TEST_DATA / "tinyshakespeare")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that drives chromium as `browser`; skip `cuda` tests cleanly without a GPU."""
    import torch

    for item in items:
        if {"browser", "page"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights folder of tiny fixture models (and one broken card)."""
    return make_weights_dir(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Model cards for catalog tests (placeholder weights and one broken card)."""
    return make_catalog_dir(tmp_path_factory.mktemp("catalog"))


def patient_url_check() -> None:
    """gradio's launch() gives the new server's first page 3 s to answer and fails otherwise; a
    loaded CI machine (other test runs at the same time) can take longer than that."""
    import time

    import httpx
    from gradio import networking

    def url_ok(url: str) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.head(url, timeout=30, verify=False).status_code in (200, 401, 302, 303, 307):
                    return True
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        return False

    networking.url_ok = url_ok


@contextlib.contextmanager
def launched(settings) -> Iterator[str]:
    """An app built from `settings` (a ServeSettings on 127.0.0.1), launched in this process: its URL.
    Closed after; outside an event, ids then resolve with the app built before it again (the
    fallback of ui/model_refs.py), whichever test built one meanwhile."""
    from aigc_demo.ui import model_refs
    from aigc_demo.ui.launch import create, launch_kwargs

    previous = model_refs._settings
    demo = create(settings)
    try:
        demo.launch(prevent_thread_lock=True, quiet=True, **launch_kwargs(settings))
        yield f"http://127.0.0.1:{settings.port}/"
    finally:
        demo.close()
        model_refs.install(previous)


@pytest.fixture(scope="session")
def app_url(weights_dir: Path) -> Iterator[str]:
    """The whole app, launched in this process on 127.0.0.1 and a free port."""
    from aigc_demo.settings import ServeSettings

    settings = ServeSettings(host="127.0.0.1", port=free_port(), device="cpu",
                             weights_dir=str(weights_dir))
    patient_url_check()
    with launched(settings) as url:
        yield url


@pytest.fixture(scope="session")
def client(app_url: str):
    from gradio_client import Client

    return Client(app_url, verbose=False)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


def _opened_page(browser, app_url: str, viewport: dict[str, int]):
    """A fresh browser context at `viewport`, on the app's first page (the Gallery shown)."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(app_url)
    page.get_by_role("tab", name="Gallery").wait_for()
    return context, page


@pytest.fixture
def page(browser, app_url: str):
    context, page = _opened_page(browser, app_url, {"width": 1280, "height": 900})
    yield page
    context.close()


VIEWPORTS = {"desktop": {"width": 1366, "height": 900}, "phone": {"width": 390, "height": 844}}


@pytest.fixture(params=list(VIEWPORTS))
def sized_page(request, browser, app_url: str):
    """The app's page at desktop and at phone size (each test that takes it runs at both)."""
    context, page = _opened_page(browser, app_url, VIEWPORTS[request.param])
    yield page
    context.close()
