"""Fixtures shared by test files: a headless Debian Chromium for the leaderboard site."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Headless Debian Chromium through its own chromedriver, logging the console; Selenium
    Manager kept offline so it never downloads a browser or driver."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} missing: install the Debian packages chromium and "
            "chromium-driver (apt-get install chromium chromium-driver)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:
        pytest.fail(f"selenium 4 is needed for the browser test (pip install selenium): {error}")
    monkeypatch.setenv("SE_OFFLINE", "true")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1500,1300"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def visible_rows(driver: Any) -> list[Any]:
    """The entries table's rows the browser shows."""
    from selenium.webdriver.common.by import By

    return [
        r for r in driver.find_elements(By.CSS_SELECTOR, "#entries tbody tr") if r.is_displayed()
    ]


@pytest.fixture
def shown_rows() -> Callable[[Any], list[Any]]:
    """:func:`visible_rows`, for tests to call on their browser."""
    return visible_rows
