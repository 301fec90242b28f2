"""Package text made safe: READMEs through cmark-gfm and nh3, URLs checked."""

import re
from html.parser import HTMLParser

import pytest

from staticreg.site import untrusted
from staticreg.site.untrusted import render_readme

# Every way a README has been used to run script or leave the page that we know of.
HOSTILE_README = """# Title <script>window.__pwned = 1</script>

```js
</script><script>window.__pwned = 10</script>
```

<img src=x onerror="window.__pwned = 2"> <img src="https://img.test/a.png" onload="window.__pwned = 3">

[a](javascript:window.__pwned=4) [b](JaVaScRiPt:alert(1)) [c](vbscript:x) [d](data:text/html,<script>alert(1)</script>)
<a href="javascript:alert(1)">e</a> <a href="jav&#x09;ascript:alert(1)">f</a> <a href=" javascript:alert(1)">g</a>

<svg onload="window.__pwned = 5"><script>window.__pwned = 6</script><a xlink:href="javascript:alert(1)">s</a></svg>

<iframe srcdoc="<script>parent.__pwned = 7</script>"></iframe>

<form action="javascript:alert(1)"><input onfocus="alert(1)" autofocus><button formaction="javascript:alert(1)">go</button></form>

<meta http-equiv="refresh" content="0;url=javascript:alert(1)"><base href="https://evil.test/">
<object data="https://evil.test/x.swf"></object><embed src="https://evil.test/x.swf"><link rel="stylesheet" href="https://evil.test/x.css">
<style>body { display: none }</style><p style="position:fixed;inset:0" onclick="alert(1)">covered</p>
<details open ontoggle="window.__pwned = 9"><summary>s</summary></details>

![i](javascript:alert(1)) <javascript:alert(1)>

<math><mtext><table><mglyph><style><img src=x onerror="window.__pwned = 8">
"""


def test_hostile_readme_keeps_nothing_that_runs():
    html = str(render_readme(HOSTILE_README, "README.md"))
    lowered = html.lower()
    for needle in (
        "<script",
        "<iframe",
        "<svg",
        "<math",
        "<form",
        "<input",
        "<button",
        "<meta",
        "<base",
        "<object",
        "<embed",
        "<link",
        "<style",
        "style=",
        "srcdoc",
    ):
        assert needle not in lowered, needle
    assert not re.search(r"\son[a-z]+\s*=", lowered), html
    # Refused links stay as inert text; no attribute holds a script or data URL.
    values = re.findall(r'\s[a-z-]+="([^"]*)"', lowered)
    assert values and not [v for v in values if re.search(r"(javascript|vbscript|data):", v)]
    # What is harmless stays: text, a picture from the web, code shown as code.
    assert "<h1>Title </h1>" in html
    assert '<img loading="lazy" referrerpolicy="no-referrer" src="https://img.test/a.png"' in html
    assert "&lt;/script&gt;&lt;script&gt;window.__pwned = 10&lt;/script&gt;" in html
    assert "covered" in html


def test_github_flavoured_markdown():
    text = """| a | b |
| --- | :-: |
| 1 | ~~old~~ |

```js
const x = 1 < 2;
```

<p align="center"><b>centred</b></p>

<details><summary>More</summary>

hidden

</details>
"""
    html = str(render_readme(text, "README.md"))
    assert "<table>" in html and "<th>a</th>" in html and "<del>old</del>" in html
    assert '<pre><code class="language-js">const x = 1 &lt; 2;\n</code></pre>' in html
    assert '<p align="center"><b>centred</b></p>' in html
    assert "<details><summary>More</summary>" in html


# GitHub's Markdown, as its specification (GitHub Flavored Markdown 0.29) gives the HTML for
# each example, which is what cmark-gfm and github.com produce for it. Pairs of (Markdown, HTML).
GFM_EXAMPLES = {
    "table": (
        "| foo | bar |\n| --- | --- |\n| baz | bim |\n",
        (
            "<table>\n<thead>\n<tr>\n<th>foo</th>\n<th>bar</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>baz</td>\n"
            "<td>bim</td>\n</tr>\n</tbody>\n</table>\n"
        ),
    ),
    "table, aligned": (
        "| abc | defghi |\n:-: | -----------:\nbar | baz\n",
        (
            '<table>\n<thead>\n<tr>\n<th align="center">abc</th>\n<th align="right">defghi</th>\n</tr>\n'
            '</thead>\n<tbody>\n<tr>\n<td align="center">bar</td>\n<td align="right">baz</td>\n</tr>\n'
            "</tbody>\n</table>\n"
        ),
    ),
    "table, escaped pipes": (
        "| f\\|oo  |\n| ------ |\n| b `\\|` az |\n| b **\\|** im |\n",
        (
            "<table>\n<thead>\n<tr>\n<th>f|oo</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>b <code>|</code> az</td>\n"
            "</tr>\n<tr>\n<td>b <strong>|</strong> im</td>\n</tr>\n</tbody>\n</table>\n"
        ),
    ),
    "table, ragged rows": (
        "| abc | def |\n| --- | --- |\n| bar |\n| bar | baz | boo |\n",
        (
            "<table>\n<thead>\n<tr>\n<th>abc</th>\n<th>def</th>\n</tr>\n</thead>\n<tbody>\n<tr>\n<td>bar</td>\n"
            "<td></td>\n</tr>\n<tr>\n<td>bar</td>\n<td>baz</td>\n</tr>\n</tbody>\n</table>\n"
        ),
    ),
    "strikethrough": ("~~Hi~~ Hello, ~there~ world!\n", "<p><del>Hi</del> Hello, <del>there</del> world!</p>\n"),
    "strikethrough, not across paragraphs": (
        "This ~~has a\n\nnew paragraph~~.\n",
        "<p>This ~~has a</p>\n<p>new paragraph~~.</p>\n",
    ),
    "strikethrough, not three tildes": ("This will ~~~not~~~ strike.\n", "<p>This will ~~~not~~~ strike.</p>\n"),
    "task list": (
        "- [ ] foo\n- [x] bar\n",
        (
            '<ul>\n<li><input disabled="" type="checkbox"> foo</li>\n'
            '<li><input checked="" disabled="" type="checkbox"> bar</li>\n</ul>\n'
        ),
    ),
    "task list, nested": (
        "- [x] foo\n  - [ ] bar\n  - [x] baz\n- [ ] bim\n",
        (
            '<ul>\n<li><input checked="" disabled="" type="checkbox"> foo\n<ul>\n'
            '<li><input disabled="" type="checkbox"> bar</li>\n'
            '<li><input checked="" disabled="" type="checkbox"> baz</li>\n</ul>\n</li>\n'
            '<li><input disabled="" type="checkbox"> bim</li>\n</ul>\n'
        ),
    ),
    "autolink, www": ("www.commonmark.org\n", '<p><a href="http://www.commonmark.org">www.commonmark.org</a></p>\n'),
    "autolink, www with a path": (
        "Visit www.commonmark.org/help for more information.\n",
        ('<p>Visit <a href="http://www.commonmark.org/help">www.commonmark.org/help</a> for more information.</p>\n'),
    ),
    "autolink, trailing punctuation": (
        "Visit www.commonmark.org.\n\nVisit www.commonmark.org/a.b.\n",
        (
            '<p>Visit <a href="http://www.commonmark.org">www.commonmark.org</a>.</p>\n'
            '<p>Visit <a href="http://www.commonmark.org/a.b">www.commonmark.org/a.b</a>.</p>\n'
        ),
    ),
    "autolink, parentheses": (
        (
            "www.google.com/search?q=Markup+(business)\n\nwww.google.com/search?q=Markup+(business)))\n\n"
            "(www.google.com/search?q=Markup+(business))\n\n(www.google.com/search?q=Markup+(business)\n"
        ),
        (
            '<p><a href="http://www.google.com/search?q=Markup+(business)">www.google.com/search?q=Markup+(business)</a></p>\n'
            '<p><a href="http://www.google.com/search?q=Markup+(business)">www.google.com/search?q=Markup+(business)</a>))</p>\n'
            '<p>(<a href="http://www.google.com/search?q=Markup+(business)">www.google.com/search?q=Markup+(business)</a>)</p>\n'
            '<p>(<a href="http://www.google.com/search?q=Markup+(business)">www.google.com/search?q=Markup+(business)</a></p>\n'
        ),
    ),
    "autolink, http": (
        "http://commonmark.org\n\n(Visit https://encrypted.google.com/search?q=Markup+(business))\n",
        (
            '<p><a href="http://commonmark.org">http://commonmark.org</a></p>\n'
            '<p>(Visit <a href="https://encrypted.google.com/search?q=Markup+(business)">'
            "https://encrypted.google.com/search?q=Markup+(business)</a>)</p>\n"
        ),
    ),
    "autolink, email": (
        "hello@mail+xyz.example isn't valid, but hello+xyz@mail.example is.\n",
        (
            '<p>hello@mail+xyz.example isn\'t valid, but <a href="mailto:hello+xyz@mail.example">'
            "hello+xyz@mail.example</a> is.</p>\n"
        ),
    ),
    "fenced code with a language": (
        "``` ruby\ndef foo(x)\n  return 3\nend\n```\n",
        '<pre><code class="language-ruby">def foo(x)\n  return 3\nend\n</code></pre>\n',
    ),
    "fenced code, tildes": ("~~~\n<\n >\n~~~\n", "<pre><code>&lt;\n &gt;\n</code></pre>\n"),
    "fenced code, longer fence": ("````\naaa\n```\n``````\n", "<pre><code>aaa\n```\n</code></pre>\n"),
}
# What sanitizing adds to what GitHub renders: rel on links, lazy loading and no referrer on pictures.
ADDED_ATTRIBUTES = {("a", "rel"), ("img", "loading"), ("img", "referrerpolicy")}


class _Tree(HTMLParser):
    """HTML as a list of tags (attributes sorted), end tags and text: the same document
    whether written <input ... /> or <input ...>, with attributes in any order."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.items: list[tuple] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        kept = sorted((k, v or "") for k, v in attrs if (tag, k) not in ADDED_ATTRIBUTES)
        self.items.append(("tag", tag, tuple(kept)))

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        self.items.append(("end", tag))

    def handle_data(self, data):
        if self.items and self.items[-1][0] == "text":
            self.items[-1] = ("text", self.items[-1][1] + data)
        else:
            self.items.append(("text", data))


@pytest.mark.parametrize("case", GFM_EXAMPLES)
def test_readmes_render_as_github_renders_them(case):
    markdown, github = GFM_EXAMPLES[case]
    assert _Tree(str(render_readme(markdown, "README.md"))).items == _Tree(github).items


def test_task_list_checkboxes_are_the_renderers_only():
    """The one <input> that gets through: a disabled checkbox at the start of a task list item."""
    marks = "\ue000staticreg-task\ue001 \ue000staticreg-done\ue001"
    text = (
        f"- [x] done\n- [ ] to do\n\n<input type=checkbox> <input type=text value=x>\n\n"
        f'<p title="{marks}">{marks}</p> <a href="https://a.test/" title="<li>{marks}">l</a>\n\n'
        '<li><input type="checkbox" disabled="" /> raw <input type="checkbox" onclick="alert(1)" /></li>\n'
    )
    html = str(render_readme(text, "README.md"))
    inputs = re.findall(r"<input[^>]*>", html)
    assert inputs == [
        '<input type="checkbox" checked="" disabled="">',
        '<input type="checkbox" disabled="">',
        '<input type="checkbox" disabled="">',
    ]
    assert all(html[html.index(i) - 4 : html.index(i)] == "<li>" for i in inputs)
    assert 'title="\ue000staticreg-task\ue001' in html and "onclick" not in html and "text" not in html


def test_links_only_absolute_http_and_mailto():
    html = str(
        render_readme(
            "[a](https://a.test/x) [b](mailto:me@a.test) [c](./docs/c.md) [d](#top) "
            "[e](ftp://a.test/) [f](//evil.test/)",
            "README.md",
        )
    )
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert hrefs == ["https://a.test/x", "mailto:me@a.test"]
    assert 'rel="nofollow noopener noreferrer"' in html
    images = str(render_readme("![a](https://a.test/a.png) ![b](b.png) ![c](http://a.test/c.png)", "README.md"))
    assert re.findall(r'src="([^"]*)"', images) == ["https://a.test/a.png", "http://a.test/c.png"]
    assert 'referrerpolicy="no-referrer"' in images


def test_code_classes_only_name_a_language():
    html = str(
        render_readme('```js" onmouseover="alert(1)\nx\n```\n\n<code class="evil language-py">y</code>', "README.md")
    )
    assert "onmouseover" not in html and "evil" not in html
    assert '<code class="language-py">y</code>' in html


@pytest.mark.parametrize("filename", ["README.txt", "readme.rst", "README.adoc"])
def test_other_readmes_are_shown_as_text(filename):
    assert str(render_readme("<b>x</b> *y*", filename)) == "<pre>&lt;b&gt;x&lt;/b&gt; *y*</pre>"


@pytest.mark.parametrize("filename", ["README", "README.md", "readme.markdown", None])
def test_markdown_readmes(filename):
    assert str(render_readme("*y*", filename)) == "<p><em>y</em></p>\n"


def test_deeply_nested_html_cannot_stall_the_build():
    """html5ever (under nh3) takes quadratic time in nesting depth: such READMEs lose their raw HTML."""
    html = str(render_readme("<div>" * 50_000 + "\n\nreal text", "README.md"))
    assert "real text" in html and "<div>" not in html  # the guard fired: no raw HTML reached nh3


def test_deeply_nested_markdown_is_shown_as_text():
    """Markdown alone can nest as deep (quotes in quotes): then the README is shown as text."""
    html = str(render_readme(">" * 50_000 + " <b>real text</b>", "README.md"))
    assert html.startswith("<pre>") and "&gt;&gt;&gt;" in html and "&lt;b&gt;real text" in html


def test_rendering_keeps_no_memory():
    """cmarkgfm's own functions keep the document's tree and the HTML of every README they
    render; the renderer frees both (with cmark-gfm's own free functions)."""
    assert untrusted._CMARK_FREE is not None, "cmark-gfm's free functions are not exported by this cmarkgfm"
    text = "| a | b |\n| - | - |\n" + "| ~x~ www.a.test | [y](https://a.test/) **z** |\n" * 4000  # 190 kB

    def resident() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    untrusted.markdown_to_html(text)
    before = resident()
    for _ in range(30):
        untrusted.markdown_to_html(text)
    assert resident() - before < 64 * 2**20  # leaking, it kept 30 x 11 MB


def test_huge_readmes_are_cut():
    text = "word " * (untrusted.MAX_README_CHARS // 5 + 10_000)
    html = str(render_readme(text, "README.md"))
    assert len(html) < untrusted.MAX_README_CHARS + 1000
    assert "README is longer than" in html


@pytest.mark.parametrize(
    "value, expected",
    [
        ("https://example.com/x", "https://example.com/x"),
        ("  http://example.com  ", "http://example.com"),
        ("HTTPS://EXAMPLE.COM", "HTTPS://EXAMPLE.COM"),
        ("mailto:a@b.test", "mailto:a@b.test"),
        ("javascript:alert(1)", None),
        ("JavaScript:alert(1)", None),
        ("java\nscript:alert(1)", None),
        ("https://exa mple.com", None),
        ("https://a.test/\x00", None),
        ("https://a.test/\x1fx", None),
        ("https://a.test/\x7fx", None),
        ("https://a.test/\u00e9", "https://a.test/\u00e9"),  # not ASCII: the browser encodes it
        ("data:text/html,x", None),
        ("//evil.test/", None),
        ("/relative", None),
        ("https://", None),
        ("mailto:", None),
        ("https://[::1", None),
        (42, None),
        (None, None),
        ("https://a.test/" + "x" * 3000, None),
    ],
)
def test_link_url(value, expected):
    assert untrusted.link_url(value) == expected


@pytest.mark.parametrize(
    "value, expected",
    [
        ("git+https://github.com/a/b.git", "https://github.com/a/b"),
        ({"type": "git", "url": "git+https://github.com/a/b.git", "directory": "packages/x"}, "https://github.com/a/b"),
        ("git://github.com/a/b.git", "https://github.com/a/b"),
        ("git+ssh://git@github.com/a/b.git", "https://github.com/a/b"),
        ("git@gitlab.com:a/b.git", "https://gitlab.com/a/b"),
        ("github:a/b", "https://github.com/a/b"),
        ("gitlab:a/b", "https://gitlab.com/a/b"),
        ("bitbucket:a/b", "https://bitbucket.org/a/b"),
        ("a/b", "https://github.com/a/b"),
        ("https://git.example.com/team/repo", "https://git.example.com/team/repo"),
        ("javascript:alert(1)", None),
        ("git+javascript:alert(1)", None),
        ({"url": "javascript:alert(1)"}, None),
        ({"url": 5}, None),
        (["https://github.com/a/b"], None),
    ],
)
def test_repository_url(value, expected):
    assert untrusted.repository_url(value) == expected


def test_bugs_person_keywords_license():
    assert untrusted.bugs_url("https://a.test/issues") == "https://a.test/issues"
    assert untrusted.bugs_url({"url": "javascript:x", "email": "bugs@a.test"}) == "mailto:bugs@a.test"
    assert untrusted.bugs_url({"email": "not an email <script>"}) is None
    assert untrusted.person("Jane Doe <jane@a.test> (https://jane.test)") == {
        "name": "Jane Doe",
        "url": "https://jane.test",
    }
    assert untrusted.person({"name": "<b>Jo</b>", "url": "javascript:x"}) == {"name": "<b>Jo</b>", "url": None}
    assert untrusted.person({"name": 3}) is None and untrusted.person(["x"]) is None
    assert untrusted.keywords("a, b c,a") == ["a", "b", "c"]
    assert untrusted.keywords(["x", 3, None, "y" * 80, "x"]) == ["x", "y" * 49 + "…"]
    assert untrusted.keywords({"a": 1}) == []
    assert untrusted.license_name({"type": "MIT", "url": "x"}) == "MIT"
    assert untrusted.license_name(["MIT"]) == ""
    assert (
        untrusted.text("  abc  ", 10) == "abc" and untrusted.text("abcdef", 4) == "abc…" and untrusted.text(1, 4) == ""
    )


def test_a_readme_renders_to_the_same_bytes_in_every_process():
    """Pages must not change from build to build: nh3's own attribute setting did (a hash map)."""
    import subprocess
    import sys

    code = (
        "from staticreg.site import untrusted; import sys; sys.stdout.write(str(untrusted.render_readme("
        '\'<a href="https://a.test/" title="t">l</a> <img src="https://a.test/i.png" alt="x" width="3">\', '
        "'README.md')))"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        for _ in range(6)
    }
    assert len(outputs) == 1 and 'loading="lazy" referrerpolicy="no-referrer"' in outputs.pop()
