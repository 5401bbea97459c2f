"""Make docs/dashboard-desktop.png and docs/dashboard-phone.png: real processes on a scratch SQLite
store and Redis prefix, some traffic through the write API, then the dashboard in headless
chromium at desktop and phone width.

    .venv/bin/python -m tests.e2e.dashboard_screenshots   (needs Redis on 127.0.0.1:6379)
"""

from __future__ import annotations

import subprocess
import tempfile
import uuid
from pathlib import Path

import httpx
import redis
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from bench.environment import delete_keys_containing
from kernel.settings import Settings
from tests.e2e.browser import DESKTOP, PHONE, click, headless_chromium, sign_in, wait_for
from tests.support import BANK, env_for, read_side_settings, running_services

DOCS = Path(__file__).resolve().parents[2] / "docs"
REDIS_URL = "redis://127.0.0.1:6379/0"


def _bank(settings: Settings, *args: str) -> str:
    done = subprocess.run(
        [*BANK, *args], env=env_for(settings), capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def _traffic(write_url: str, token: str) -> int:
    """A few accounts with deposits, withdrawals, transfers (one reversed), a pending hold and an
    overdraft; the last position."""
    people = [("alice", "Alice Martin", "USD"), ("bob", "Bob Chen", "USD"),
              ("carol", "Carol Diaz", "EUR"), ("dave", "Dave Okafor", "USD"),
              ("erin", "Erin Novak", "EUR")]  # fmt: skip
    steps = [("alice", "deposit", "1250.00"), ("alice", "withdraw", "310.45"),
             ("alice", "deposit", "89.99"), ("bob", "deposit", "40.00"),
             ("carol", "deposit", "7300.10"), ("dave", "deposit", "15.25"),
             ("alice", "withdraw", "120.00"), ("alice", "deposit", "560.30"),
             ("erin", "deposit", "99.00"), ("alice", "withdraw", "74.81")]  # fmt: skip
    with httpx.Client(base_url=write_url, headers={"Authorization": f"Bearer {token}"}) as c:
        for account_id, owner, currency in people:
            c.post("/accounts", json={"account_id": account_id, "owner": owner,
                                      "currency": currency}).raise_for_status()  # fmt: skip
        for account_id, kind, amount in steps:
            c.post(f"/accounts/{account_id}/{kind}", json={"amount": amount}).raise_for_status()
        c.post("/accounts/bob/overdraft-limit", json={"overdraft_limit": "100.00"})
        c.post("/transfers", json={"from_account": "bob", "to_account": "alice",
                                   "amount": "65.00", "reference": "rent share"})  # fmt: skip
        c.post("/transfers", json={"from_account": "alice", "to_account": "bob", "amount": "12.00",
                                   "transfer_id": "lunch"}).raise_for_status()  # fmt: skip
        c.post("/transfers/lunch/reverse", json={"reference": "paid twice"}).raise_for_status()
        c.post("/holds", json={"from_account": "alice", "to_account": "bob", "amount": "200.00",
                               "hold_id": "hotel-1", "reference": "hotel deposit"},
               ).raise_for_status()  # fmt: skip
        done = c.post("/accounts/dave/withdraw", json={"amount": "15.25"})
        done.raise_for_status()
        position: int = c.post("/accounts/dave/close").json()["position"]
        return position


def _shoot(driver: WebDriver, query_url: str, token: str, width: int, path: Path) -> None:
    sign_in(driver, query_url, token)
    wait_for(driver, lambda d: "alice" in d.find_element(By.ID, "accounts-table").text, "alice")
    wait_for(driver, lambda d: d.find_element(By.ID, "projections-table").is_displayed(), "lag")
    click(driver, "#accounts-table th[data-sort=balance] button")
    wait_for(
        driver,
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "th[data-sort=balance]").get_attribute("aria-sort")
            == "descending"
        ),
        "the balance order",
    )
    click(driver, "tr[data-account-id=alice] button")
    wait_for(driver, lambda d: d.find_element(By.ID, "account-detail").is_displayed(), "detail")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, int(height) + 120)
    driver.execute_script("window.scrollTo(0, 0)")
    driver.save_screenshot(str(path))


def main() -> None:
    prefix = f"bankshots-{uuid.uuid4().hex[:8]}"
    with tempfile.TemporaryDirectory() as tmp:
        settings = read_side_settings(
            f"sqlite:///{tmp}/bank.db", REDIS_URL, prefix, auth_enabled=True
        )
        try:
            _bank(settings, "migrate")
            token = _bank(settings, "apikey", "create", "--name", "shots", "--scope", "admin")
            with running_services(settings, Path(tmp)) as (write_url, query_url):
                position = _traffic(write_url, token)
                httpx.get(
                    f"{query_url}/accounts/dave/statement",
                    params={"min_position": position},
                    headers={"Authorization": f"Bearer {token}"},
                ).raise_for_status()
                for (width, height), name in ((DESKTOP, "desktop"), (PHONE, "phone")):
                    with headless_chromium((width, height)) as driver:
                        _shoot(driver, query_url, token, width, DOCS / f"dashboard-{name}.png")
                    print(f"wrote docs/dashboard-{name}.png")
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            delete_keys_containing(client, prefix)
            client.close()


if __name__ == "__main__":
    main()
