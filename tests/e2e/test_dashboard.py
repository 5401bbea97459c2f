"""The dashboard in a real headless chromium against real processes: `bank write-api`,
`bank worker` and `bank query-api` with authentication on. Commands go in over HTTP; the test
reads what the page shows, as a person would.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from kernel.settings import Settings
from tests.e2e.browser import (
    click,
    headless_chromium,
    require_chromium,
    sign_in,
    texts,
    wait_for,
)
from tests.support import BANK, env_for, read_side_settings, running_services

KEY_STORAGE = "bank-dashboard-api-key"


@dataclass(frozen=True)
class Bank:
    write_url: str
    query_url: str
    settings: Settings

    def key(self, name: str, *scopes: str) -> str:
        flags = [arg for scope in scopes for arg in ("--scope", scope)]
        done = subprocess.run(
            [*BANK, "apikey", "create", "--name", name, *flags],
            env=env_for(self.settings),
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1]

    def command(self, token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"}
        answer = httpx.post(f"{self.write_url}{path}", json=body, headers=headers, timeout=10)
        assert answer.status_code in (200, 201), answer.text
        result: dict[str, Any] = answer.json()
        return result


@pytest.fixture
def bank(pg_url: str, redis_url: str, redis_prefix: str, tmp_path: Path) -> Iterator[Bank]:
    require_chromium()
    settings = read_side_settings(pg_url, redis_url, redis_prefix, auth_enabled=True)
    with running_services(settings, tmp_path) as (write_url, query_url):
        yield Bank(write_url, query_url, settings)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    require_chromium()
    with headless_chromium() as driver:
        yield driver


def _text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def _row(driver: WebDriver, account_id: str) -> list[str]:
    return texts(driver, f"tr[data-account-id='{account_id}'] td")


def _signed_in(driver: WebDriver) -> bool:
    return bool(driver.find_element(By.ID, "dashboard").is_displayed())


def test_a_read_key_signs_in_and_sees_the_accounts_opened_through_the_write_api(
    bank: Bank, browser: WebDriver
) -> None:
    writer, reader = bank.key("writer", "write"), bank.key("viewer", "read")
    bank.command(writer, "/accounts", {"owner": "Alice", "account_id": "alice"})
    bank.command(writer, "/accounts", {"owner": "Bob", "account_id": "bob", "currency": "EUR"})
    bank.command(writer, "/accounts/alice/deposit", {"amount": "1250.10"})

    sign_in(browser, bank.query_url, reader)

    wait_for(browser, lambda d: len(_row(d, "bob")) == 6, "bob's row")
    wait_for(browser, lambda d: _row(d, "alice")[3] == "1250.10", "alice's balance")
    assert _row(browser, "alice") == ["alice", "Alice", "USD", "1250.10", "1250.10", "open"]
    assert _row(browser, "bob") == ["bob", "Bob", "EUR", "0.00", "0.00", "open"]
    assert _text(browser, "count-accounts") == "2"
    assert "USD 1250.10" in _text(browser, "totals")
    assert browser.execute_script(f"return sessionStorage.getItem('{KEY_STORAGE}')") == reader
    wait_for(browser, lambda d: d.find_element(By.ID, "projections-note").is_displayed(), "note")
    assert "lacks the admin scope" in _text(browser, "projections-note")


def test_a_deposit_made_while_the_page_is_open_shows_up_without_a_reload(
    bank: Bank, browser: WebDriver
) -> None:
    writer, reader = bank.key("writer", "write"), bank.key("viewer", "read")
    bank.command(writer, "/accounts", {"owner": "Carol", "account_id": "carol"})
    bank.command(writer, "/accounts/carol/deposit", {"amount": "10.00"})
    sign_in(browser, bank.query_url, reader)
    wait_for(browser, lambda d: _row(d, "carol")[3:4] == ["10.00"], "carol's first balance")
    click(browser, "tr[data-account-id=carol] button")
    wait_for(browser, lambda d: _text(d, "detail-balance") == "10.00", "carol's detail")
    browser.execute_script("window.stillTheSamePage = true")

    bank.command(writer, "/accounts/carol/deposit", {"amount": "0.05", "reference": "tip"})

    wait_for(browser, lambda d: _row(d, "carol")[3:4] == ["10.05"], "the deposit in the table")
    wait_for(browser, lambda d: _text(d, "detail-balance") == "10.05", "the deposit in the detail")
    wait_for(browser, lambda d: "0.05 10.05 tip" in _text(d, "statement-table"), "the entry")
    assert "USD 10.05" in _text(browser, "totals")
    assert "to 10.05" in _text(browser, "chart-caption")
    assert browser.execute_script("return window.stillTheSamePage") is True


def test_a_hold_and_a_reversal_read_in_words_and_the_held_money_shows_live(
    bank: Bank, browser: WebDriver
) -> None:
    writer, reader = bank.key("writer", "write"), bank.key("viewer", "read")
    for account_id in ("dora", "eve"):
        bank.command(writer, "/accounts", {"owner": account_id, "account_id": account_id})
    bank.command(writer, "/accounts/dora/deposit", {"amount": "50.00"})
    sign_in(browser, bank.query_url, reader)
    wait_for(browser, lambda d: _row(d, "dora")[3:4] == ["50.00"], "dora's balance")
    click(browser, "tr[data-account-id=dora] button")
    wait_for(browser, lambda d: _text(d, "detail-held") == "0.00", "dora's detail")

    hold = {"from_account": "dora", "to_account": "eve", "amount": "20.00", "hold_id": "room"}
    bank.command(writer, "/holds", hold)
    pay = {"from_account": "dora", "to_account": "eve", "amount": "5.00", "transfer_id": "twice"}
    bank.command(writer, "/transfers", pay)
    bank.command(writer, "/transfers/twice/reverse", {"reference": "oops"})

    wait_for(browser, lambda d: _text(d, "detail-held") == "20.00", "the held money")
    wait_for(browser, lambda d: _row(d, "dora")[3:5] == ["50.00", "30.00"], "balance, available")
    wait_for(browser, lambda d: "oops" in _text(d, "statement-table"), "the reversal's entry")
    statement = _text(browser, "statement-table")
    assert "Hold placed" in statement
    assert "hold room with eve, 20.00 held" in statement
    assert "from eve (reverses twice): oops" in statement


def test_a_wrong_key_shows_that_it_was_not_accepted_and_is_not_kept(
    bank: Bank, browser: WebDriver
) -> None:
    sign_in(browser, bank.query_url, "bank_" + "x" * 43)

    wait_for(browser, lambda d: d.find_element(By.ID, "sign-in-error").is_displayed(), "an error")
    assert "not accepted" in _text(browser, "sign-in-error")
    assert not _signed_in(browser)
    assert browser.execute_script(f"return sessionStorage.getItem('{KEY_STORAGE}')") is None


def test_a_key_without_the_read_scope_is_told_so(bank: Bank, browser: WebDriver) -> None:
    sign_in(browser, bank.query_url, bank.key("writer", "write"))

    wait_for(browser, lambda d: d.find_element(By.ID, "sign-in-error").is_displayed(), "an error")
    assert "lacks the read scope" in _text(browser, "sign-in-error")
    assert not _signed_in(browser)


def test_an_admin_key_sees_each_projections_checkpoint_head_and_lag(
    bank: Bank, browser: WebDriver
) -> None:
    admin = bank.key("admin", "admin")
    opened = bank.command(admin, "/accounts", {"owner": "Dan", "account_id": "dan"})

    sign_in(browser, bank.query_url, admin)

    def caught_up(d: WebDriver) -> bool:
        rows = texts(d, "#projections-table tbody tr")
        position = str(opened["position"])
        return len(rows) == 2 and all(r.split()[2:5] == [position, position, "0"] for r in rows)

    wait_for(browser, caught_up, "both projections at the head with no lag")
    names = [row.split()[0] for row in texts(browser, "#projections-table tbody tr")]
    assert names == ["balances", "statements"]
    assert not browser.find_element(By.ID, "projections-note").is_displayed()


def test_the_accounts_table_sorts_by_balance_and_pages_with_the_keyset_cursor(
    bank: Bank, browser: WebDriver
) -> None:
    writer, reader = bank.key("writer", "write"), bank.key("viewer", "read")
    commands: list[dict[str, Any]] = []
    for n in range(25):
        commands.append({"type": "open_account", "owner": f"o{n}", "account_id": f"acct-{n:02d}"})
        commands.append({"type": "deposit", "account_id": f"acct-{n:02d}", "amount": f"{n}.01"})
    bank.command(writer, "/batches", {"commands": commands})
    sign_in(browser, bank.query_url, reader)
    wait_for(browser, lambda d: _text(d, "count-accounts") == "25", "25 accounts")

    click(browser, "th[data-sort=balance] button")
    wait_for(browser, lambda d: _first_account(d) == "acct-24", "the richest account first")
    assert _account_ids(browser) == [f"acct-{n:02d}" for n in range(24, 4, -1)]
    click(browser, "#accounts-next")
    wait_for(browser, lambda d: _first_account(d) == "acct-04", "the second page")
    assert _account_ids(browser) == [f"acct-{n:02d}" for n in range(4, -1, -1)]
    assert not browser.find_element(By.ID, "accounts-next").is_enabled()
    click(browser, "#accounts-prev")
    wait_for(browser, lambda d: _first_account(d) == "acct-24", "the first page again")


def _account_ids(driver: WebDriver) -> list[str]:
    return texts(driver, "#accounts-table tbody tr[data-account-id] td:first-child")


def _first_account(driver: WebDriver) -> str | None:
    ids = _account_ids(driver)
    return ids[0] if ids else None


def test_the_page_needs_no_key_but_its_data_does_and_the_key_never_enters_a_url(
    bank: Bank, browser: WebDriver
) -> None:
    page = httpx.get(f"{bank.query_url}/dashboard")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    for asset in ("dashboard.js", "dashboard.css"):
        assert httpx.get(f"{bank.query_url}/dashboard/assets/{asset}").status_code == 200
    assert httpx.get(f"{bank.query_url}/summary").status_code == 401

    reader = bank.key("viewer", "read")
    sign_in(browser, bank.query_url, reader)
    wait_for(browser, _signed_in, "the dashboard")
    urls = browser.execute_script(
        "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]"
    )
    assert len(urls) > 3
    assert not [url for url in urls if reader in url]
