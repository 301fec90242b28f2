"""The CloudFront Function `staticreg server-config cloudfront-function` writes, run
under node against viewer-request and viewer-response events shaped as CloudFront
documents them (CloudFront itself cannot run here): every kind of URL without
credentials, with a wrong token, with each accepted form of a right one."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest

from staticreg.hosting import auth
from tests.process import run_cli

pytestmark = pytest.mark.e2e

TOKEN = "cf-token-0123456789abcdef"
OTHER = "cf-other-fedcba9876543210"
# Runs the function's code as CloudFront does: a script whose handler(event) is called.
HARNESS = """
const fs = require('fs');
const code = fs.readFileSync(process.argv[1], 'utf8');
const handler = new Function('require', code + '\\nreturn handler;')(require);
const events = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
console.log(JSON.stringify(events.map(e => handler(e))));
"""
URLS = {
    "document": "/@acme/widgets",
    "abbreviated document": "/@acme/widgets",
    "version document": "/demo-utils/1.2.0",
    "dist-tags": "/-/package/demo-utils/dist-tags",
    "tarball": "/@acme/widgets/-/widgets-1.0.0.tgz",
    "ping": "/-/ping",
    "site page": "/",
    "package page": "/-/web/package/demo-utils/",
    "asset": "/-/web/assets/site.js",
    "search index": "/-/web/search-index.json",
    "missing package": "/no-such-package",
}


def viewer_request(uri: str, authorization: str | None = None, accept: str | None = None) -> dict:
    headers = {"host": {"value": "d111111abcdef8.cloudfront.net"}, "user-agent": {"value": "npm/11"}}
    if authorization is not None:
        headers["authorization"] = {"value": authorization}
    if accept:
        headers["accept"] = {"value": accept}
    return {
        "version": "1.0",
        "context": {
            "distributionDomainName": "d111111abcdef8.cloudfront.net",
            "distributionId": "EDFDVBD6EXAMPLE",
            "eventType": "viewer-request",
            "requestId": "4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==",
        },
        "viewer": {"ip": "198.51.100.11"},
        "request": {"method": "GET", "uri": uri, "querystring": {}, "headers": headers, "cookies": {}},
    }


def viewer_response(cache_control: str | None) -> dict:
    event = viewer_request("/demo-utils", f"Bearer {TOKEN}")
    event["context"]["eventType"] = "viewer-response"
    headers = {"content-type": {"value": "application/json"}}
    if cache_control is not None:
        headers["cache-control"] = {"value": cache_control}
    event["response"] = {"statusCode": 200, "statusDescription": "OK", "headers": headers, "cookies": {}}
    return event


def basic(pair: str) -> str:
    return "Basic " + base64.b64encode(pair.encode()).decode()


@pytest.fixture(scope="module")
def function(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cloudfront")
    tokens = folder / "tokens.txt"
    tokens.write_text(f"# who may read\nci: {TOKEN}\nalice: {OTHER}\n")
    result = run_cli("server-config", "cloudfront-function", "--tokens", str(tokens))
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout and OTHER not in result.stdout  # only their SHA-256 is in the code
    code = folder / "function.js"
    code.write_text(result.stdout)
    return folder, code


def run(function, events: list[dict]) -> list[dict]:
    folder, code = function
    events_file = folder / "events.json"
    events_file.write_text(json.dumps(events))
    result = subprocess.run(
        ["node", "-e", HARNESS, str(code), str(events_file)], capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def assert_refused(answer: dict) -> None:
    assert answer["statusCode"] == 401 and answer["statusDescription"] == "Unauthorized"
    assert answer["headers"]["www-authenticate"] == {"value": f'Basic realm="{auth.REALM}"'}
    assert answer["headers"]["content-type"] == {"value": "application/json"}
    assert answer["headers"]["cache-control"] == {"value": "no-store"}
    assert answer["body"]["encoding"] == "text"
    assert isinstance(json.loads(answer["body"]["data"])["error"], str)


def test_every_kind_of_url_is_refused_without_credentials_and_with_wrong_ones(function):
    accept = {"abbreviated document": "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8, */*"}
    wrong = [
        None,
        "",
        f"Bearer {TOKEN}x",
        f"Bearer {TOKEN[:-1]}",
        f"bearer {TOKEN}",
        f"Bearer {TOKEN.upper()}",
        f"Bearer  {TOKEN}",
        f"Basic {TOKEN}",
        basic(f"alice:{TOKEN}"),
        basic(f"ci:{OTHER}"),
        basic("ci"),
        "Basic !!",
    ]
    events = [viewer_request(uri, given, accept.get(kind)) for kind, uri in URLS.items() for given in wrong]
    answers = run(function, events)
    assert len(answers) == len(URLS) * len(wrong)
    for answer in answers:
        assert_refused(answer)


def test_each_token_passes_as_bearer_and_as_basic_name_and_token(function):
    right = [f"Bearer {TOKEN}", basic(f"ci:{TOKEN}"), f"Bearer {OTHER}", basic(f"alice:{OTHER}")]
    events = [viewer_request(uri, given) for uri in URLS.values() for given in right]
    answers = run(function, events)
    assert answers == [event["request"] for event in events]  # the request goes on, unchanged


def test_viewer_response_makes_cache_control_private(function):
    answers = run(
        function,
        [
            viewer_response("public, max-age=0, must-revalidate"),
            viewer_response("public, max-age=31536000, immutable"),
            viewer_response(None),
        ],
    )
    assert [a["headers"].get("cache-control") for a in answers] == [
        {"value": "private, max-age=0, must-revalidate"},
        {"value": "private, max-age=31536000, immutable"},
        None,
    ]
    assert all(a["statusCode"] == 200 for a in answers)
