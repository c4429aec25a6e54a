from __future__ import annotations

import re
import sys
from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import htmltext
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


# --- the shortcuts taken for speed give what the plain definitions give ---------------------

SCRUB_PIECES = st.sampled_from(
    ["<", ">", "/", "script", "ScRiPt", "\u017fcript", "scr\u0130pt", "java", "vb", "live", ":",
     " ", "\t", "\n", "=", "on", "onload", "x", "\x00", "\u200b", "\u2028", "é", "<b>", "</p>"]
)  # fmt: skip


def scrub_by_definition(text: str) -> str:
    text = htmltext._CONTROL.sub("", text)
    while True:
        before = text
        text = htmltext._TAG_LIKE.sub(" ", text)
        text = htmltext._OPEN_BRACKET.sub("\u2039", text)
        text = htmltext._SCRIPT_SCHEME.sub(r"\1 ", text)
        text = htmltext._HANDLER.sub(r"\1 ", text)
        if text == before:
            return text


@settings(max_examples=500, deadline=None)
@given(st.lists(SCRUB_PIECES, max_size=30).map("".join))
def test_scrub_gives_what_applying_every_pattern_gives(text: str) -> None:
    assert htmltext.scrub(text) == scrub_by_definition(text)


def test_script_hint_covers_every_character_the_case_blind_pattern_accepts() -> None:
    """The cheap case-sensitive pre-check must find every "script:" that (?i) would."""
    every_character = "".join(map(chr, range(sys.maxunicode + 1))).replace("\n", "")
    for position, letter in enumerate("script"):
        for char in set(re.findall(f"(?i){letter}", every_character)):
            spelled = "script"[:position] + char + "script"[position + 1 :]
            assert htmltext._SCRIPT_SCHEME.search(f"java{spelled} :")
            assert htmltext._SCRIPT_HINT.search(f"java{spelled} :"), (letter, char)


WHITESPACE_TEXT = st.text(
    alphabet=st.sampled_from([" ", "\t", "\r", "\x0b", "\x1c", "\xa0", "\u2003", "a", "é"]),
    max_size=20,
)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x3000), max_size=30))
def test_dropping_controls_gives_what_the_pattern_gives(text: str) -> None:
    assert htmltext._drop_controls(text) == htmltext._CONTROL.sub("", text)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=30))
def test_dropping_controls_from_ascii_gives_what_the_pattern_gives(text: str) -> None:
    # ASCII text takes the byte-level check; every ASCII character is in the alphabet.
    assert htmltext._drop_controls(text) == htmltext._CONTROL.sub("", text)


@pytest.mark.parametrize("code", range(0x80))
def test_each_ascii_control_is_dropped_and_nothing_else(code: int) -> None:
    text = f"a{chr(code)}b"
    assert htmltext._drop_controls(text) == htmltext._CONTROL.sub("", text)


SIMPLE_MARKUP_PIECES = st.sampled_from(
    ["<p>", "</p>", "<P >", "</p >", "</p a='b'>", '</b x="y">', "</p/>", "</br>", "<br/>",
     "<b>", "</b>", "<a href='https://a.example/'>", "</a>", "<pre>", "</pre>", "<script>",
     "<", "<<p>", ">", "&amp;", "&#1;", "word", " ", "\n", "\x07", "\xa0"]
)  # fmt: skip


@settings(max_examples=1000, deadline=None)
@given(st.lists(SIMPLE_MARKUP_PIECES, max_size=12).map("".join))
def test_simple_walk_declines_or_walks_as_html_parser_walks(markup: str) -> None:
    sink = htmltext._TextSink(base_url="https://feed.example/", inline_links=True)
    walker = htmltext._TextWalker(base_url="https://feed.example/", inline_links=True)
    walker.feed(markup)
    walker.close()
    if htmltext._walk_simple(markup, sink):
        assert (sink.parts, sink.links) == (walker.parts, walker.links)
    else:  # declined: a stray "<", a closing tag with attributes or "/>", script/style
        assert "<" in re.sub(r"</?[a-zA-Z][^<>]*>", "", markup) or re.search(
            r"</[^<>]*(?:=|/>)|<script", markup, re.IGNORECASE
        )
        assert sink.parts == [] and sink.links == []


@settings(max_examples=500, deadline=None)
@given(st.lists(SCRUB_PIECES, max_size=30).map("".join))
def test_finishing_laid_out_text_gives_what_scrub_then_tidy_give(text: str) -> None:
    laid = htmltext._layout(htmltext._CONTROL.sub("", text))
    expected = htmltext._tidy(htmltext.scrub(laid))
    assert htmltext._finish(laid, controls=False) == expected
    assert htmltext._finish(laid, controls=True) == expected


LAYOUT_PIECES = st.sampled_from(
    [htmltext._PARA_MARK, htmltext._LINE_MARK, "\n", " ", "  ", "\t", "\r", "\xa0", "a", "é", "b c"]
)


def layout_by_definition(marked: str) -> str:
    paragraphs = []
    for block in marked.split(htmltext._PARA_MARK):
        parts = block.replace(htmltext._LINE_MARK, "\n").split("\n")
        lines = [" ".join(part.split()) for part in parts]
        joined = "\n".join(line for line in lines if line)
        if joined:
            paragraphs.append(joined)
    return "\n\n".join(paragraphs)


@settings(max_examples=1000, deadline=None)
@given(st.lists(LAYOUT_PIECES, max_size=20).map("".join))
def test_layout_gives_what_its_definition_gives(marked: str) -> None:
    assert htmltext._layout(marked) == layout_by_definition(marked)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(SCRUB_PIECES, LAYOUT_PIECES, WHITESPACE_TEXT), max_size=30).map("".join))
def test_text_without_line_breaks_is_already_one_line(text: str) -> None:
    # bot.parse skips one_line() for such text.
    for limit in (5, 40, 500):
        for result in (plain_text(text, limit=limit), html_to_text(text, limit=limit)):
            if "\n" not in result:
                assert htmltext.one_line(result) == result


URL_PIECES = st.sampled_from(
    ["http", "https", "HTTP", "ftp", "urn", "javascript", ":", "//", "/", "a.example", "ü",
     "?", "#", ";", "&", "=", "'", "%20", " ", "\t", "[", "]", "@", "x", "..", ".", "-", "8080"]
)  # fmt: skip


def safe_link_by_definition(href: str, base_url: str | None) -> str | None:
    href = htmltext._CONTROL.sub("", href).strip()
    if not href or len(href) > 4000:
        return None
    try:
        absolute = urljoin(base_url, href) if base_url else href
        parts = urlsplit(absolute)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if any(ch.isspace() or ch in "<>\"'" for ch in absolute):
        return None
    return absolute


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(URL_PIECES, max_size=12).map("".join),
    st.sampled_from([None, "", "https://news.example/a/feed", "http://n.example/?q", "urn:x"]),
)
def test_safe_link_shortcuts_give_what_urljoin_and_urlsplit_give(
    href: str, base_url: str | None
) -> None:
    assert safe_link(href, base_url) == safe_link_by_definition(href, base_url)
    if htmltext.is_plain_url(href):
        assert urljoin(base_url or "", href) == href


def test_preformatted_text_keeps_its_line_breaks() -> None:
    text = html_to_text("<p>Release notes:</p><pre>llama 5\n  weights\x07 out</pre>")
    assert text == "Release notes:\n\nllama 5\nweights out"


@settings(max_examples=1000, deadline=None)
@given(st.lists(SIMPLE_MARKUP_PIECES, max_size=12).map("".join))
def test_simple_split_is_the_regex_split_when_every_bracket_opens_a_simple_tag(
    markup: str,
) -> None:
    parts = htmltext._SIMPLE_TAG.split(markup)
    if "<" in "".join(parts[::5]):
        assert htmltext._simple_split(markup) is None
    else:
        assert htmltext._simple_split(markup) == parts


def test_layout_drops_only_whole_paragraph_marks_at_the_ends() -> None:
    mark = htmltext._PARA_MARK
    assert htmltext._layout(f"{mark}{mark}a  b{mark}") == "a b"
    assert htmltext._layout(f"{mark}a{mark}b{mark}{mark}") == "a\n\nb"
    assert htmltext._layout(f"{mark}\x00") == "\x00"
    assert htmltext._layout(mark * 3) == ""


@pytest.mark.parametrize("name", ["p", "P", "h1", "H1", "br", "bR", "a", "svg", "X9y"])
def test_ascii_lower_is_lower(name: str) -> None:
    assert htmltext.ascii_lower(name) == name.lower()
