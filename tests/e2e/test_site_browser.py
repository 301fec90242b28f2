"""The browse site in a real headless Chromium, served by real nginx: search, package
pages, an older version's README, the 404 page; and a hostile package whose
scripts must never run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.e2e.browser import Browser
from tests.e2e.npm import Npm
from tests.e2e.project import copy_examples
from tests.e2e.servers import fetch, free_port, start_nginx
from tests.helpers import make_tarball

pytestmark = pytest.mark.e2e


def build(input_dir: Path, output: Path, base_url: str, extra: str = "") -> None:
    config = output.parent / f"{output.name}.yml"
    config.write_text(f"input: {input_dir}\noutput: {output}\nbase_url: {base_url}\ntitle: staticreg examples\n{extra}")
    result = subprocess.run(
        [sys.executable, "-m", "staticreg", "build", "-q", "-c", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.quit()


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """The bundled examples, plus a package with every link a package page can show."""
    scratch = tmp_path_factory.mktemp("site-browser")
    input_dir = copy_examples(scratch / "input")
    manifest = {
        "name": "@demo/format",
        "description": "Formats greetings for @demo/greet",
        "keywords": ["greeting", "format"],
        "license": "Apache-2.0",
        "author": "Demo Team <team@demo.test>",
        "repository": "github:demo/format",
        "homepage": "https://demo.test/format",
        "dependencies": {"@demo/greet": "^1.0.0", "left-pad": "^1.3.0"},
    }
    readme = {"README.md": "# @demo/format\n\nFormats greetings.\n\n```js\nformat('hi') // => 'Hi!'\n```\n"}
    for version in ("1.0.0", "1.0.1", "1.0.2"):  # the same README: one page for the three versions
        make_tarball(input_dir, {**manifest, "version": version}, readme)
    port = free_port()
    output = scratch / "registry"
    build(
        input_dir,
        output,
        f"http://127.0.0.1:{port}/",
        extra=(
            'dist_tags:\n  demo-utils:\n    next: "2.0.0-beta.1"\n'
            'deprecations:\n  "demo-utils@1.0.0": "demo-utils 1.0.0 has a bug in shout(); use 1.1.0 or later"\n'
        ),
    )
    server = start_nginx(output, scratch / "nginx", port)
    yield server
    server.stop()


def requested(server, needle: str) -> bool:
    return needle in server.log.read_text()


def test_search_package_page_and_older_readme(browser, examples):
    b, server = browser, examples
    b.color_scheme("light")
    b.get(server.url("/"))
    assert b.driver.title == "staticreg examples"
    names = b.texts("#listing .package-name")
    assert names == ["@demo/format", "@demo/greet", "demo-cli", "demo-utils"]
    assert not requested(server, "search-index.json")  # the home page does not carry the index

    search = b.css("#q")
    search.click()
    search.send_keys("greet")
    b.wait(lambda d: len(b.texts("#search-list .package-name")) == 2)
    assert requested(server, "GET /-/web/search-index.json ")
    assert b.texts("#search-list .package-name") == ["@demo/greet", "@demo/format"]  # name first
    assert b.css("#search-status").text == "2 packages match “greet”."
    assert not b.css("#listing").is_displayed()
    b.screenshot("search-light")

    search.clear()
    search.send_keys("examples utils")  # words of a name and a description, in any order
    b.wait(lambda d: b.texts("#search-status") == ["1 package matches “examples utils”."])
    assert b.texts("#search-list .package-name") == ["demo-utils"]
    search.clear()
    search.send_keys("utils")
    b.wait(lambda d: b.texts("#search-status") == ["1 package matches “utils”."])
    b.css("#search-list .package-name").click()

    b.wait(lambda d: d.current_url.endswith("/-/web/package/demo-utils/"))
    assert b.css("h1").text.startswith("demo-utils")
    assert b.css(".readme h1").text == "demo-utils 1.2.0"
    assert b.css(".readme table th").text == "function"  # a GFM table
    assert "npm install demo-utils" in b.css(".secondary").text
    rows = [r.text.split()[0] for r in b.all(".versions tbody th")]
    assert rows == ["2.0.0-beta.1", "1.2.0", "1.1.0", "1.0.0"]
    b.screenshot("package-light")
    b.color_scheme("dark")
    b.screenshot("package-dark")
    b.color_scheme("light")

    b.css('.versions a[href$="/1.0.0.html#v1.0.0"]').click()
    b.wait(lambda d: d.current_url.endswith("/-/web/package/demo-utils/1.0.0.html#v1.0.0"))
    assert b.css(".readme h1").text == "demo-utils 1.0.0"  # that version's own README
    assert "has a bug in shout()" in b.css(".notice").text
    assert "npm install demo-utils@1.0.0" in b.css(".secondary").text
    b.screenshot("version-light")
    assert b.console_errors() == []
    assert b.attempts() == {"dialogs": [], "csp": [], "pwned": None}


def test_package_links_scope_and_keyboard(browser, examples):
    b, server = browser, examples
    b.get(server.url("/-/web/package/@demo/format/"))
    assert b.css('a[href="https://github.com/demo/format"]')
    assert b.css('a[href="https://demo.test/format"]')
    assert "@demo:registry=" + server.url("/") in b.css(".secondary").text
    links = {a.text: a.get_attribute("href") for a in b.all(".dependency-list a")}
    assert links == {"@demo/greet": server.url("/-/web/package/@demo/greet/")}  # left-pad is not here
    # Keyboard: the skip link comes first, "/" jumps to the search box.
    b.js("document.activeElement.blur()")
    b.css("body").send_keys("/")
    assert b.js("return document.activeElement.id") == "q"
    assert b.js("return document.querySelector('a').className") == "skip-link"
    assert b.js("return document.querySelector('main').id") == "main"
    assert b.css("label[for=q]")
    b.css("#q").send_keys("format\n")  # the search form leads to the home page's search
    b.wait(lambda d: "?q=format" in d.current_url and b.texts("#search-list .package-name") == ["@demo/format"])
    b.get(server.url("/-/web/scope/@demo.html"))
    assert b.texts(".package-name") == ["@demo/format", "@demo/greet"]
    assert b.console_errors() == []


def test_versions_with_the_same_readme_share_its_page(browser, examples):
    """@demo/format 1.0.0 to 1.0.2 have one README: one page shows it once, and each
    version's own details in a section that the package page's links lead to."""
    b, server = browser, examples
    b.get(server.url("/-/web/package/@demo/format/"))
    assert [r.text.split()[0] for r in b.all(".versions tbody th")] == ["1.0.2", "1.0.1", "1.0.0"]
    b.css('.versions a[href$="/1.0.0.html#v1.0.1"]').click()
    b.wait(lambda d: d.current_url.endswith("/-/web/package/@demo/format/1.0.0.html#v1.0.1"))
    assert b.css("h1").text == "@demo/format 1.0.0 to 1.0.2"
    assert len(b.all(".readme")) == 1 and b.css(".readme h1").text == "@demo/format"
    assert [s.get_attribute("id") for s in b.all(".version-section")] == ["v1.0.2", "v1.0.1", "v1.0.0"]
    section = b.js("return document.getElementById('v1.0.1').innerText")
    assert "npm install @demo/format@1.0.1" in section and "format-1.0.1.tgz" in section and "sha512-" in section
    assert b.js("return document.querySelector(':target').id") == "v1.0.1"
    top = b.js("return document.getElementById('v1.0.1').getBoundingClientRect().top")
    assert 0 <= top < 200  # scrolled to its section
    b.screenshot("versions-light")
    b.css('.version-links a[href="#v1.0.0"]').click()
    b.wait(lambda d: d.current_url.endswith("#v1.0.0"))
    assert b.console_errors() == []


def test_small_screen(examples):
    b = Browser()
    try:
        b.phone()
        b.get(examples.url("/-/web/package/demo-utils/"))
        assert b.js("return document.documentElement.scrollWidth <= window.innerWidth")  # nothing sticks out
        b.screenshot("package-phone-light")
        b.color_scheme("dark")
        b.get(examples.url("/"))
        b.screenshot("home-phone-dark")
        assert b.console_errors() == []
    finally:
        b.quit()


def test_missing_package_page(browser, examples):
    b, server = browser, examples
    status, headers, body = fetch(server.url("/no-such-package"))
    assert status == 404 and b"Not found" in body and headers["content-type"].startswith("text/html")
    b.get(server.url("/@demo%2fnope"))
    b.wait(lambda d: "“@demo/nope”" in b.css("#not-found-message").text)
    assert b.css("#q").get_attribute("value") == "@demo/nope"
    b.screenshot("not-found-light")
    errors = b.console_errors()
    assert all("404" in e and "nope" in e for e in errors), errors  # only the page's own status
    # npm is not confused by an HTML body on a 404.
    npm = Npm(server.log.parent / "npm-404", server.url("/"))
    result = npm.run("view", "no-such-package", cwd=server.log.parent, check=False)
    assert result.returncode != 0 and "E404" in result.stderr


# -- a hostile package ------------------------------------------------------------

PAYLOAD = "</script><script>window.__pwned='script'</script><img src=x onerror=\"window.__pwned='img'\">"
HOSTILE_README = """# evil <script>window.__pwned='readme-script'</script>

<img src=x onerror="window.__pwned='readme-img'"> <svg onload="window.__pwned='svg'"><script>alert('svg')</script></svg>

[click](javascript:window.__pwned='md-link') <a href="javascript:window.__pwned='a-link'">click</a>
<a href="JaVaScRiPt:alert('case')">case</a> <a href="data:text/html,<script>alert(1)</script>">data</a>

<iframe srcdoc="<script>parent.__pwned='iframe'</script>"></iframe>
<object data="javascript:alert('object')"></object><embed src="javascript:alert('embed')">
<form action="javascript:alert('form')"><input autofocus onfocus="window.__pwned='autofocus'"></form>
<details open ontoggle="window.__pwned='details'"><summary>x</summary></details>
<meta http-equiv="refresh" content="0;url=javascript:alert('meta')"><base href="javascript:alert('base')//">
<style>@import 'javascript:alert(1)'; body { background: red }</style>
<math><mtext><table><mglyph><style><img src=x onerror="window.__pwned='mxss'">
"""


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("site-hostile")
    input_dir = scratch / "input"
    manifest = {
        "name": "evil-pkg",
        "description": PAYLOAD,
        "keywords": [PAYLOAD, "</script>", "<svg onload=alert(1)>"],
        "license": PAYLOAD,
        "homepage": "javascript:window.__pwned='homepage'",
        "repository": {"type": "git", "url": "javascript:window.__pwned='repository'"},
        "bugs": {"url": "javascript:alert('bugs')", "email": 'a@b.test" onmouseover="alert(1)'},
        "author": {"name": PAYLOAD, "url": "javascript:window.__pwned='author'"},
        "dependencies": {PAYLOAD: PAYLOAD, "demo-dep": "^1.0.0"},
    }
    make_tarball(
        input_dir,
        {**manifest, "version": "1.0.0", "deprecated": PAYLOAD},
        {"README.md": HOSTILE_README.replace("# evil", "# old evil", 1)},
    )
    make_tarball(input_dir, {**manifest, "version": "2.0.0"}, {"README.md": HOSTILE_README})
    make_tarball(input_dir, {"name": "demo-dep", "version": "1.0.0", "description": "<b>bold?</b>"})
    port = free_port()
    output = scratch / "registry"
    build(input_dir, output, f"http://127.0.0.1:{port}/")
    server = start_nginx(output, scratch / "nginx", port)
    yield server
    server.stop()


def check_inert(b: Browser, where: str) -> None:
    assert b.attempts() == {"dialogs": [], "csp": [], "pwned": None}, where
    assert b.console_errors() == [], where
    bad = b.js("""
        const found = [];
        for (const el of document.querySelectorAll('*')) {
          for (const attr of el.attributes) {
            const value = attr.value.trim().toLowerCase();
            if (attr.name.startsWith('on')) found.push(el.tagName + ' ' + attr.name);
            if (['href', 'src', 'action', 'formaction', 'data', 'srcdoc'].includes(attr.name)
                && /^(javascript|data|vbscript):/.test(value)) found.push(el.tagName + ' ' + attr.name + '=' + value);
          }
          if (['IFRAME', 'OBJECT', 'EMBED', 'FORM', 'SVG', 'MATH', 'BASE', 'META', 'STYLE'].includes(el.tagName.toUpperCase())
              && el.closest('.readme')) found.push(el.tagName);
        }
        const scripts = Array.from(document.scripts).map(s => s.src ? 'src' : 'inline:' + s.textContent);
        if (scripts.length !== 1 || scripts[0] !== 'src') found.push('scripts ' + scripts.join('|'));
        return found;
    """)
    assert bad == [], where


def test_hostile_package_runs_nothing(browser, hostile):
    b, server = browser, hostile
    b.get(server.url("/"))
    check_inert(b, "home")
    (item,) = [i for i in b.all("#listing .package-item") if i.text.startswith("evil-pkg")]
    assert PAYLOAD in item.text  # shown as text, exactly

    b.css("#q").send_keys("script")
    b.wait(lambda d: b.texts("#search-status") == ["1 package matches “script”."])
    assert b.css("#search-list .package-name").text == "evil-pkg"
    assert PAYLOAD in b.css("#search-list .package-description").text
    assert "#</script>" in b.css("#search-list .package-meta").text
    check_inert(b, "search results")

    b.css("#search-list .package-name").click()
    b.wait(lambda d: d.current_url.endswith("/-/web/package/evil-pkg/"))
    assert b.css(".readme h1").text == "evil"
    assert PAYLOAD in b.css(".lead").text and PAYLOAD in b.css(".dependency-list").text
    assert [
        a.get_attribute("href") for a in b.all(".secondary a[rel]")
    ] == []  # no homepage/repository/bugs/author links
    b.screenshot("hostile-package-light")
    check_inert(b, "package page")
    for link in b.all(".readme a"):  # clicking what is left of the links goes nowhere
        link.click()
    assert b.driver.current_url.endswith("/-/web/package/evil-pkg/")
    check_inert(b, "package page, links clicked")

    b.css('.versions a[href$="/1.0.0.html#v1.0.0"]').click()
    b.wait(lambda d: d.current_url.endswith("/1.0.0.html#v1.0.0"))
    assert b.css(".readme h1").text == "old evil"
    assert PAYLOAD in b.css(".notice").text
    check_inert(b, "version page")

    b.get(server.url("/" + quote("<img src=x onerror=window.__pwned='404'>")))
    b.wait(lambda d: "onerror" in b.css("#not-found-message").text)
    assert b.attempts() == {"dialogs": [], "csp": [], "pwned": None}
    b.console_errors()  # the page's own 404
