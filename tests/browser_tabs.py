"""Open a tab by its name in a real browser, also when a narrow screen puts it in Gradio's '...' menu."""

from __future__ import annotations


def open_tab(page, name: str) -> None:
    """Click the visible tab called `name`, or pick it from the 'More tabs' menu that holds it."""
    tab = page.locator(f"button[role=tab]:text-is('{name}')")
    for index in range(tab.count()):
        if tab.nth(index).is_visible():
            tab.nth(index).click()
            return
    menus = page.locator(".overflow-menu")
    for index in range(menus.count()):
        menu = menus.nth(index)
        if not menu.is_visible():
            continue
        item = menu.locator(f".overflow-dropdown button:text-is('{name}')")
        if item.count():
            menu.get_by_role("button", name="More tabs").click()
            item.first.click()
            return
    raise AssertionError(f"no tab called {name!r} on the page")
