from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.htmltext import cap, extract, html_to_text, plain_text, safe_link

DANGER = re.compile(r"<\s*script|javascript\s*:|\bon[a-z]+\s*=", re.IGNORECASE)


def test_paragraphs_lines_and_entities() -> None:
    html = (
        "<h2>Llama&nbsp;3.1</h2><p>Meta&#8217;s   biggest\n open model &amp; more.</p>"
        "<ul><li>405B</li><li>128k context</li></ul>Tail<br/>line"
    )
    assert html_to_text(html) == (
        "Llama 3.1\n\nMeta’s biggest open model & more.\n\n405B\n128k context\n\nTail\nline"
    )


def test_script_style_and_embedded_content_are_dropped() -> None:
    html = (
        "<p>Visible</p><script>var stolen = document.cookie;</script>"
        "<style>p { color: red }</style><noscript>enable js</noscript>"
        "<iframe src='https://evil.example'>frame text</iframe>"
        "<object data='x.swf'>object text</object><p>After</p>"
    )
    assert html_to_text(html) == "Visible\n\nAfter"


def test_links_collected_only_for_http_schemes() -> None:
    html = (
        '<a href="https://ai.meta.com/blog/llama">the blog</a> '
        '<a href="javascript:alert(1)">click</a> '
        '<a href="data:text/html;base64,PHNjcmlwdD4=">data</a> '
        '<a href="/relative/post">relative</a>'
    )
    result = extract(html, base_url="https://news.example/feed")
    assert result.links == ("https://ai.meta.com/blog/llama", "https://news.example/relative/post")
    assert result.text == "the blog click data relative"


def test_inline_links_render_url_after_anchor_text() -> None:
    result = extract('<a href="https://ai.meta.com/">Meta AI</a>', inline_links=True)
    assert result.text == "Meta AI (https://ai.meta.com/)"


@pytest.mark.parametrize(
    "html",
    [
        "&lt;script&gt;alert(1)&lt;/script&gt; news",
        "&lt;scr<b>ipt&gt;alert(1)",
        "&lt;  SCRIPT src=x&gt;",
        "<p>&lt;img src=x onerror=alert(1)&gt;</p>",
        "text onclick = steal() more",
        "visit JavaScript:alert(1) or java\tscript:void(0)",
        "<a href='x' onmouseover='alert(1)'>hover</a>",
        "&lt;&lt;script&gt;script&gt;",
        "javajavascript:script:alert(1)",
    ],
)
def test_script_lookalikes_never_survive(html: str) -> None:
    for text in (html_to_text(html), plain_text(html)):
        assert not DANGER.search(text), text


def test_escaped_markup_keeps_surrounding_words() -> None:
    text = html_to_text("Meta said &lt;script&gt;alert(1)&lt;/script&gt; was stripped")
    assert text.startswith("Meta said")
    assert text.endswith("was stripped")


def test_plain_text_keeps_paragraphs_and_folds_spaces() -> None:
    assert plain_text("  one   two\r\n\r\n\tthree \n four ") == "one two\n\nthree\nfour"


def test_output_is_capped_at_word_boundary() -> None:
    text = html_to_text("<p>" + "llama " * 5000 + "</p>", limit=2000)
    assert len(text) <= 2000
    assert text.endswith("llama…")
    assert cap("short", 10) == "short"


def test_huge_input_is_bounded() -> None:
    text = html_to_text("<div>" * 200_000 + "word " * 200_000, limit=500)
    assert len(text) <= 500


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        ("https://a.example/x", "https://a.example/x"),
        (" HTTP://a.example/ ", "HTTP://a.example/"),
        ("javascript:alert(1)", None),
        ("  jAvAsCrIpT:alert(1)", None),
        ("data:text/html,hi", None),
        ("vbscript:msgbox", None),
        ("mailto:x@y.z", None),
        ("https:///nohost", None),
        ('https://a.example/"onmouseover="x', None),
    ],
)
def test_safe_link(href: str, expected: str | None) -> None:
    assert safe_link(href) == expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "<",
                ">",
                "&lt;",
                "&gt;",
                "script",
                "SCRIPT",
                "java",
                "javascript",
                ":",
                "&#58;",
                "on",
                "onload",
                "=",
                " ",
                "\n",
                "<b>",
                "</b>",
                "<p>",
                "x",
                "&amp;",
                "<script>",
                "</script>",
                "<!--",
                "-->",
                "\x00",
                "<a href='javascript:1'>",
            ]
        ),
        max_size=40,
    ).map("".join)
)
def test_no_script_lookalike_from_any_mix(html: str) -> None:
    assert not DANGER.search(html_to_text(html))
    assert not DANGER.search(plain_text(html))
