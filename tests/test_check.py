"""The check's pure parts; tests/e2e/test_check.py runs it against real hosts."""

from __future__ import annotations

import pytest

from staticreg.hosting import check


def test_scoped_names_are_asked_for_in_both_spellings():
    assert check._document_urls("http://h/npm/", "@acme/widgets") == [
        "http://h/npm/@acme%2fwidgets",
        "http://h/npm/@acme%2Fwidgets",
    ]
    assert check._document_urls("http://h/", "left-pad") == ["http://h/left-pad"]


def test_max_age():
    assert check._max_age("public, max-age=0, must-revalidate") == 0
    assert check._max_age("public, max-age=31536000, immutable") == 31536000
    assert check._max_age("no-cache") is None


def test_a_header_sent_twice_is_read_as_one_list_and_vary_by_its_names():
    from email.message import Message

    message = Message()
    for key, value in (("Vary", "Accept-Encoding"), ("vary", "Accept"), ("Content-Type", "application/json")):
        message[key] = value
    got = check._lower(message)
    assert got == {"vary": "Accept-Encoding, Accept", "content-type": "application/json"}
    assert check._tokens(got["vary"]) == {"accept-encoding", "accept"}
    assert "accept" not in check._tokens("Accept-Encoding")  # not Vary: Accept, though its name starts so


def test_the_same_problem_on_many_urls_is_one_line():
    report = check.CheckReport()
    for url in ("http://h/a", "http://h/b", "http://h/c"):
        report.problem(url, "no Cache-Control", "send one")
    report.problem("http://h/t.tgz", "answers 404", "deploy it")
    assert report.problems == [
        "http://h/a (and 2 more): no Cache-Control. Fix: send one",
        "http://h/t.tgz: answers 404. Fix: deploy it",
    ]


def test_document_body_problems():
    report = check.CheckReport()
    check.check_document_body(
        "u", "x", {"name": "x", "versions": {"1.0.0": {}}, "dist-tags": {"latest": "1.0.0"}, "time": {}}, report
    )
    check.check_document_body("v", "y", {"name": "y", "versions": {"1.0.0": {}}, "dist-tags": {}}, report)
    assert [p.split(": ", 1)[1].split(" (")[0] for p in report.problems] == [
        "time has no entry for 1.0.0",
        "dist-tags.latest is missing or names no version",
    ]


@pytest.mark.parametrize("url", ["npm.example.com", "file:///etc/", "ftp://host/"])
def test_check_refuses_what_is_not_a_registry_url_without_a_traceback(url):
    from click.testing import CliRunner

    from staticreg.cli import cli

    result = CliRunner().invoke(cli, ["check", url], catch_exceptions=False)
    assert result.exit_code == 1 and "is not a registry URL: give its http(s) address" in result.stderr
