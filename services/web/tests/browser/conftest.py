"""The real stack for browser tests: intake, groups, notifications (and news) as OS
processes on the real Kafka broker and PostgreSQL server, an SMTP sink, the web front as
`python -m web`, and Debian's Chromium driven by Selenium with axe-core injected."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import (
    NoSuchElementException,
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service as ChromeService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import WebDriverWait

from devtools.proc import free_ports
from devtools.pytest_plugin import DatabaseFactory, SmtpSink
from devtools.testing import (
    ADMIN,
    CLERK_TOKEN,
    ServiceProcess,
    consultation_payload,
    service_environment,
    unique_prefix,
)

HERE = Path(__file__).parent
AXE_JS = (HERE / "axe" / "axe.min.js").read_text(encoding="utf-8")
SCREENSHOTS = Path(os.environ.get("STRATEGIA_SCREENSHOT_DIR") or HERE.parents[1] / "screenshots")
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
WAIT_SECONDS = 60


@dataclass
class Stack:
    web: ServiceProcess
    intake: ServiceProcess
    groups: ServiceProcess
    notifications: ServiceProcess
    news: ServiceProcess
    sink: SmtpSink
    processes: list[ServiceProcess] = field(default_factory=list)

    def api(self, service: ServiceProcess) -> httpx.Client:
        return httpx.Client(base_url=service.url, timeout=30)

    def new_consultation(self, **changes: Any) -> dict[str, Any]:
        with self.api(self.intake) as client:
            response = client.post(
                "/v1/consultations", json=consultation_payload(**changes), headers=ADMIN
            )
            response.raise_for_status()
            found: dict[str, Any] = response.json()
            return found

    def mail_to(self, address: str, count: int = 1) -> list[EmailMessage]:
        """Wait until `count` messages to `address` arrived; return them (oldest first)."""
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            found = [m for m in self.sink.messages() if address in str(m.get("To", ""))]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count} message(s) to {address}; have {len(found)}")
            time.sleep(0.2)


def eventually(probe: Callable[[], Any], what: str) -> Any:
    """Poll `probe` until it returns something truthy (no timing assertions)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()
    return content


@pytest.fixture(scope="session")
def stack(
    kafka_bootstrap_servers: str,
    postgres_admin_dsn: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("web-stack")
    databases = DatabaseFactory(postgres_admin_dsn)
    sink = SmtpSink(logs / "mail", "127.0.0.1", free_ports(1)[0])
    sink.start()
    prefix = unique_prefix("web")
    web = ServiceProcess("web", {}, logs / "web.log")

    def environment(name: str, **extra: object) -> dict[str, str]:
        return service_environment(
            database_url=databases(name),
            kafka=kafka_bootstrap_servers,
            prefix=prefix,
            public_base_url=web.url,
            **extra,
        )

    intake = ServiceProcess("intake", environment("intake"), logs / "intake.log")
    groups = ServiceProcess(
        "groups",
        environment("groups", group_min_size=1, trend_min_submissions=3),
        logs / "groups.log",
    )
    notifications = ServiceProcess(
        "notifications",
        environment(
            "notifications",
            smtp_host=sink.host,
            smtp_port=sink.port,
            dispatcher_poll_seconds=0.5,
        ),
        logs / "notifications.log",
    )
    news = ServiceProcess("news", environment("news"), logs / "news.log")
    web.environment.update(
        {
            "STRATEGIA_INTAKE_URL": intake.url,
            "STRATEGIA_GROUPS_URL": groups.url,
            "STRATEGIA_NOTIFICATIONS_URL": notifications.url,
            "STRATEGIA_NEWS_URL": news.url,
            "STRATEGIA_CLERK_TOKEN": CLERK_TOKEN,
            "STRATEGIA_WEB_SECRET_KEY": secrets.token_urlsafe(32),
            "STRATEGIA_LOG_LEVEL": "INFO",
        }
    )
    processes = [intake, groups, notifications, news, web]
    try:
        for process in processes:
            process.start()
        for process in processes:
            process.ready(timeout=180)
        yield Stack(web, intake, groups, notifications, news, sink, processes)
    finally:
        for process in reversed(processes):
            process.stop()
        sink.stop()
        databases.drop_all()


def _options(javascript: bool) -> Options:
    options = Options()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        "--lang=pl-PL",
        "--force-prefers-reduced-motion",
    ):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    return options


def replaced(page: Any) -> Callable[[WebDriver], bool]:
    """Like Selenium's `staleness_of`, also when Chromium, asked about the old page's node
    in the middle of the navigation, answers "Node … does not belong to the document"
    (seen under load) instead of a stale-element error: that node is gone either way."""
    stale = staleness_of(page)

    def check(driver: WebDriver) -> bool:
        try:
            return bool(stale(driver))
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise

    return check


class Browser:
    """A Chromium session with helpers: open a page, fill forms, check axe, screenshot."""

    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(path if path.startswith("http") else self.base_url + path)

    def find(self, css: str) -> Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str) -> list[Any]:
        return list(self.driver.find_elements(By.CSS_SELECTOR, css))

    def fill(self, name: str, value: str) -> None:
        element = self.find(f'[name="{name}"]')
        if element.tag_name == "select":
            from selenium.webdriver.support.select import Select

            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)

    def tick(self, name: str) -> None:
        element = self.find(f'[name="{name}"]')
        if not element.is_selected():
            element.click()

    def submit(self, css: str = "main form button[type=submit]") -> None:
        """Press the button and wait until the next page replaced this one."""
        self.click(css)

    def click(self, css: str) -> None:
        page = self.find("html")
        self.find(css).click()
        self.wait(replaced(page), f"the page after clicking {css}")

    def wait(self, condition: Callable[[WebDriver], Any], what: str) -> Any:
        return WebDriverWait(
            self.driver,
            WAIT_SECONDS,
            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException),
        ).until(condition, what)

    def wait_for_path(self, fragment: str) -> None:
        self.wait(lambda d: fragment in d.current_url, f"URL containing {fragment}")

    @property
    def heading(self) -> str:
        text: str = self.find("h1").text
        return text

    def axe(self) -> list[dict[str, Any]]:
        """axe-core's WCAG 2.1 A/AA violations of the page as it is now."""
        self.driver.execute_script(AXE_JS)
        result = self.driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
            ".then(r => done(JSON.stringify(r.violations)))"
            ".catch(e => done(JSON.stringify([{id: 'axe-error', help: String(e)}])));",
            WCAG_TAGS,
        )
        violations: list[dict[str, Any]] = json.loads(result)
        return violations

    def check_page(self, name: str | None = None) -> None:
        """Zero axe violations at 1280 px and 320 px; no horizontal scrolling at 320 px;
        `lang` set; a screenshot of each width when `name` is given."""
        assert self.driver.find_element(By.TAG_NAME, "html").get_attribute("lang") in (
            "pl",
            "en",
        )
        for width in (1280, 320):
            self.driver.set_window_size(width, 1000)
            violations = self.axe()
            assert violations == [], _describe(self.driver.current_url, width, violations)
            overflow = self.driver.execute_script(
                "return document.documentElement.scrollWidth - window.innerWidth"
            )
            if overflow > 0:
                wide = self.driver.execute_script(
                    "return [...document.querySelectorAll('body *')]"
                    ".filter(e => e.getBoundingClientRect().right > window.innerWidth)"
                    ".slice(0, 8).map(e => e.tagName + '#' + e.id + '.' + e.className)"
                )
                raise AssertionError(
                    f"{self.driver.current_url} scrolls sideways at {width}px: {wide}"
                )
            if name:
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                height = self.driver.execute_script(
                    "return Math.min(document.documentElement.scrollHeight, 3000)"
                )
                self.driver.set_window_size(width, max(int(height), 600))
                self.driver.save_screenshot(str(SCREENSHOTS / f"{name}-{width}.png"))
        self.driver.set_window_size(1280, 1000)


def _describe(url: str, width: int, violations: list[dict[str, Any]]) -> str:
    lines = [f"axe violations on {url} at {width}px:"]
    for violation in violations:
        targets = [node.get("target") for node in violation.get("nodes", [])][:5]
        lines.append(f"  {violation.get('id')}: {violation.get('help')} {targets}")
    return "\n".join(lines)


@pytest.fixture
def browser(stack: Stack) -> Iterator[Browser]:
    driver = webdriver.Chrome(
        service=ChromeService(executable_path=CHROMEDRIVER), options=_options(True)
    )
    driver.set_script_timeout(60)
    try:
        yield Browser(driver, stack.web.url)
    finally:
        driver.quit()


@pytest.fixture
def browser_without_js(stack: Stack) -> Iterator[Browser]:
    driver = webdriver.Chrome(
        service=ChromeService(executable_path=CHROMEDRIVER), options=_options(False)
    )
    try:
        yield Browser(driver, stack.web.url)
    finally:
        driver.quit()
