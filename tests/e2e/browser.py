"""A real headless browser for the dashboard's tests and screenshots: Debian's chromium driven by
its chromedriver through Selenium (`make chromium` installs both; nothing is downloaded here).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = (1280, 900)
PHONE = (390, 844)
UI_TIMEOUT_S = 10
"""A bound on how long a test waits for the page, not a promise about speed."""


def require_chromium() -> None:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("chromium and chromedriver are missing: run `make chromium`")


@contextmanager
def headless_chromium(size: tuple[int, int] = DESKTOP) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--window-size={size[0]},{size[1]}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def texts(driver: WebDriver, css: str) -> list[str]:
    """The visible text of every element matching `css`, read in one step: the live page may
    redraw a table between two WebDriver calls, which would leave element handles stale."""
    found = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.innerText.trim())", css
    )
    return [str(text) for text in found]


def click(driver: WebDriver, css: str) -> None:
    """Click the element matching `css` now (found and clicked in one step, like `texts`)."""
    driver.execute_script("document.querySelector(arguments[0]).click()", css)


def wait_for(driver: WebDriver, condition: object, what: str) -> object:
    """Poll the page until `condition(driver)` is truthy; fail naming `what`."""
    return WebDriverWait(
        driver,
        UI_TIMEOUT_S,
        poll_frequency=0.05,
        ignored_exceptions=[StaleElementReferenceException],
    ).until(
        condition,  # type: ignore[arg-type]
        message=f"the page never showed {what}",
    )


def sign_in(driver: WebDriver, query_url: str, token: str) -> None:
    """Open the dashboard and type the key into its sign-in form."""
    driver.get(f"{query_url}/dashboard")
    field: WebElement = driver.find_element(By.ID, "api-key")
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#sign-in-form button[type=submit]").click()
