"""`staticreg check URL --token T`: what a private registry must also do. Every kind
of URL it serves is refused without credentials, and with wrong ones, as 401 with
a Basic challenge and npm's {"error": ...} body (a 403 or 404 sends users hunting
for a missing package); what it serves with credentials no shared cache may keep."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from urllib.parse import quote

from staticreg.npm import layout

HOSTING = "see docs/hosting.md, Private registries"
ABBREVIATED_ACCEPT = "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"
NO_CREDENTIAL = {"Authorization": ""}
WRONG_CREDENTIAL = {"Authorization": "Bearer staticreg-check-wrong-token-0000"}


def urls(registry: str, name: str | None, fetch: Callable) -> list[tuple[str, str, str | None]]:
    """(kind, URL, Accept) of one file of every kind the registry serves."""
    found: list[tuple[str, str, str | None]]
    found = [
        ("ping", registry + layout.PING, None),
        ("site page", registry, None),
        ("search index", registry + layout.SITE_SEARCH_INDEX, None),
        ("missing file", registry + layout.NEVER_WRITTEN, None),
    ]
    home = fetch(registry)
    asset = re.search(rb"(-/web/assets/[A-Za-z0-9._-]+)", home.body) if home.status == 200 else None
    found.append(("asset", registry + (asset.group(1).decode() if asset else layout.site_asset("style.css")), None))
    if name is None:
        return found
    document = registry + quote(name, safe="@").replace("/", "%2f")
    found += [
        ("document", document, "application/json"),
        ("abbreviated document", document, ABBREVIATED_ACCEPT),
        ("dist-tags", registry + layout.dist_tags_path(name), None),
        ("package page", registry + layout.page_link(layout.site_package_page(name)), None),
    ]
    answer = fetch(document, "application/json")
    try:
        data = json.loads(answer.body)
        latest = data["dist-tags"]["latest"]
        found.append(("version document", f"{document}/{quote(latest)}", None))
        found.append(("tarball", data["versions"][latest]["dist"]["tarball"], None))
    except (ValueError, KeyError, TypeError):
        pass  # the document checks have said what is wrong with it
    return found


def check_refusals(registry: str, names: list[str], fetch: Callable, report) -> None:
    name = next((n for n in names if n.startswith("@")), names[0] if names else None)
    for kind, url, accept in urls(registry, name, fetch):
        for what, headers in (("without credentials", NO_CREDENTIAL), ("with a wrong token", WRONG_CREDENTIAL)):
            if what == "with a wrong token" and kind not in ("ping", "document", "tarball"):
                continue
            check_refused(kind, url, fetch(url, accept, headers), what, report)
        if kind in ("document", "tarball", "site page"):
            allowed = fetch(url, accept)
            cache = allowed.headers.get("cache-control", "")
            if allowed.status == 200 and ("public" in cache or "private" not in cache):
                report.problem(
                    url,
                    f"the {kind} is served with Cache-Control: {cache or '(none)'}: a shared cache may keep it "
                    "and give it to anyone",
                    f"send Cache-Control: private on a private registry "
                    f"(staticreg server-config --tokens does); {HOSTING}",
                )


def check_refused(kind: str, url: str, answer, what: str, report) -> None:
    if answer.status == 200:
        report.problem(
            url,
            f"the {kind} is served {what}: anyone can read it",
            f"protect every URL of the registry (staticreg server-config ... --tokens FILE); {HOSTING}",
        )
        return
    if answer.status != 401:
        report.problem(
            url,
            f"the {kind} answers {answer.status} {what}, not 401: clients then speak of a missing "
            "package or a permission, not of credentials",
            f"answer 401 with WWW-Authenticate: Basic; {HOSTING}",
        )
        return
    if not answer.headers.get("www-authenticate", "").lower().startswith("basic"):
        report.problem(
            url,
            f"the 401 {what} has no WWW-Authenticate: Basic challenge: browsers never ask for a password "
            "and npm cannot say what is missing",
            f'send WWW-Authenticate: Basic realm="..."; {HOSTING}',
        )
    try:
        error = json.loads(answer.body).get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, str):
        report.problem(
            url,
            f'the 401 {what} has no JSON body with an "error" text: npm and yarn print nothing useful',
            f'answer with {{"error": "..."}} as application/json; {HOSTING}',
        )
