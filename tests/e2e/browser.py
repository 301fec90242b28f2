"""A real headless Chromium for the site's tests: Debian's chromium driven through its
chromedriver with selenium. Nothing is downloaded; every page gets a watcher that
records what a hostile page would try (dialogs, CSP violations) before any of
the page's own scripts run."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = ("/usr/lib/chromium/chromium", "/usr/bin/chromium")  # the first skips Debian's wrapper script
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
)

# Runs in every document before its scripts: dialogs are recorded instead of shown,
# and so is every Content-Security-Policy violation (an injected script the policy
# stopped is still a failure of the escaping).
WATCHER = """
window.__dialogs = [];
window.__csp = [];
for (const name of ["alert", "confirm", "prompt", "print"]) {
  window[name] = function () { window.__dialogs.push(name + ":" + Array.from(arguments).join(",")); };
}
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def output_dir() -> Path:
    """Where screenshots go: $STATICREG_TEST_OUTPUT, or test-output/ at the top of the checkout."""
    folder = Path(os.environ.get("STATICREG_TEST_OUTPUT") or ROOT / "test-output") / "site"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium_binary() -> str:
    found = next((p for p in CHROMIUM if os.path.exists(p)), None)
    if not found or not os.path.exists(CHROMEDRIVER):
        raise RuntimeError(
            "chromium and chromedriver are not installed: scripts/test installs them "
            "(apt-get install chromium chromium-driver)"
        )
    return found


class Browser:
    def __init__(self, width: int = 1280, height: int = 900):
        os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must never fetch anything
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="staticreg-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = chromium_binary()
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={self.profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        options.set_capability("unhandledPromptBehavior", "ignore")
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.driver.set_page_load_timeout(20)
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCHER})
        self.console: list[dict] = []

    def get(self, url: str) -> None:
        self.driver.get(url)
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")

    def wait(self, condition, timeout: float = 10):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.driver, timeout).until(condition)

    def js(self, script: str, *args):
        return self.driver.execute_script(script, *args)

    def css(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def texts(self, selector: str) -> list[str]:
        """The visible text of every match, read at once (a list the page re-renders goes stale)."""
        return self.js("return Array.from(document.querySelectorAll(arguments[0]), e => e.innerText.trim())", selector)

    def color_scheme(self, scheme: str) -> None:
        self.driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]}
        )

    def screenshot(self, name: str) -> Path:
        """The whole page, not only the window, as output_dir()/name.png."""
        width, height = self.js("return [document.documentElement.clientWidth, document.documentElement.scrollHeight]")
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 8000), "scale": 1},
            },
        )
        path = output_dir() / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def phone(self) -> None:
        """A phone's screen: 390 by 844 CSS pixels, touch, mobile layout."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True}
        )

    def console_errors(self) -> list[str]:
        """Console errors since the last call (the browser's log is read once)."""
        self.console += self.driver.get_log("browser")
        errors = [e["message"] for e in self.console if e["level"] == "SEVERE"]
        self.console = []
        return errors

    def attempts(self) -> dict:
        """What the page's watcher saw: dialogs, CSP violations, and the flag payloads set."""
        return self.js(
            "return {dialogs: window.__dialogs || [], csp: window.__csp || [],"
            " pwned: window.__pwned === undefined ? null : String(window.__pwned)}"
        )

    def quit(self) -> None:
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)
