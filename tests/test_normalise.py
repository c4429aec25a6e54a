from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.normalise import (
    _canonical_split,
    canonical_url,
    content_hash,
    guid_key,
    normalise_title,
    title_key,
    url_key,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://Example.COM:80", "http://example.com/"),
        ("https://News.Example.com:443/a/b", "https://news.example.com/a/b"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com/a#comments", "https://example.com/a"),
        (
            "https://example.com/story?utm_source=rss&utm_medium=feed&b=2&a=1&fbclid=XYZ",
            "https://example.com/story?a=1&b=2",
        ),
        (
            "https://example.com/s?gclid=1&mc_cid=2&mc_eid=3&igshid=4&ref_src=twsrc&_hsenc=5"
            "&_hsmi=6&yclid=7&msclkid=8&UTM_Campaign=9&id=42",
            "https://example.com/s?id=42",
        ),
        ("https://example.com/./a/../b/", "https://example.com/b/"),
        ("https://example.com/%7euser/caf%c3%a9", "https://example.com/~user/caf%C3%A9"),
        ("https://example.com/a b", "https://example.com/a%20b"),
        ("https://bücher.example/llama", "https://xn--bcher-kva.example/llama"),
        ("https://example.com./x", "https://example.com/x"),
        ("https://user:secret@example.com/x", "https://example.com/x"),
        ("http://[2001:db8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
    ],
)
def test_canonical_url(url: str, expected: str) -> None:
    assert canonical_url(url) == expected


@pytest.mark.parametrize(
    "junk",
    [
        None,
        "",
        "javascript:alert(1)",
        "data:text/html,x",
        "ftp://example.com/file",
        "mailto:someone@example.com",
        "/relative/only",
        "http:///no-host",
        "http://example.com:99999/",
        "http://example.com:port/",
        "http://exa mple.com/",
        "http://[::1/",
        "https://" + "a" * 5000 + ".com/",
        "https://xn--/",
        "https://" + "ü" * 70 + ".com/",
    ],
)
def test_canonical_url_refuses_junk_without_raising(junk: str | None) -> None:
    assert canonical_url(junk) is None
    assert url_key(junk) is None


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80).map(lambda tail: "https://" + tail))
def test_canonical_url_never_raises_and_is_idempotent(url: str) -> None:
    canonical = canonical_url(url)
    if canonical is not None:
        assert canonical.startswith("https://")
        assert canonical_url(canonical) == canonical


def test_variants_of_one_story_share_url_key() -> None:
    a = url_key("https://www.example.com/2024/07/llama?utm_source=twitter#top")
    b = url_key("HTTPS://WWW.EXAMPLE.COM:443/2024/07/llama")
    assert a is not None
    assert a == b
    assert a != url_key("https://www.example.com/2024/07/llama-2")


def test_guid_key_is_per_feed() -> None:
    assert guid_key(1, "tag:x,2024:1") == guid_key(1, " tag:x,2024:1 ")
    assert guid_key(1, "tag:x,2024:1") != guid_key(2, "tag:x,2024:1")
    assert len(guid_key("feed-a", "x")) == 64


def test_title_normalisation_folds_case_punctuation_and_quotes() -> None:
    assert normalise_title("  Meta’s LLAMA 3.1: the  biggest — open model yet! ") == (
        "meta's llama 3.1 the biggest open model yet"
    )
    assert title_key("Reuters", "Meta's Llama 3.1: out now") == title_key(
        "reuters", "META’S LLAMA 3.1 — OUT NOW"
    )
    assert title_key("Reuters", "Llama 3.1 out") != title_key("Reuters", "Llama 3 out")
    assert title_key("Reuters", "Same") != title_key("AP", "Same")
    assert title_key("Reuters", " — !! ") is None


def test_content_hash_ignores_cosmetics_but_not_words() -> None:
    base = content_hash("Meta buys GPUs", "Meta plans 350,000 H100s by year end.")
    assert base == content_hash("META buys GPUs!", "Meta plans  350,000 H100s\nby year end")
    assert base != content_hash("Meta buys GPUs", "Meta plans 600,000 H100s by year end.")


WORDS = st.lists(
    st.sampled_from(
        ["meta", "plans", "350", "000", "h100s", "by", "year", "end", "llama", "3", "1"]
    ),
    min_size=1,
    max_size=12,
)
# What may stand between words without changing the hash: whitespace and punctuation.
GAPS = st.sampled_from([" ", "  ", "\n", "\t", ", ", ". ", " — ", "! ", "\u00a0", "’", "-", "_"])


def _cosmetic(words: list[str], gaps: list[str], upper: bool, wide: bool) -> str:
    padded = gaps + [" "] * (len(words) - len(gaps))
    text = "".join(word + gap for word, gap in zip(words, padded[: len(words)], strict=True))
    if upper:
        text = text.upper()
    if wide:  # fullwidth forms, folded back by Unicode compatibility normalisation
        text = "".join(chr(ord(c) + 0xFEE0) if c.isalnum() and c.isascii() else c for c in text)
    return text


@settings(max_examples=200, deadline=None)
@given(WORDS, st.lists(GAPS, max_size=12), st.booleans(), st.booleans(), st.booleans())
def test_content_hash_is_equal_for_cosmetic_differences_only(
    words: list[str], gaps: list[str], upper: bool, wide: bool, change_word: bool
) -> None:
    plain = " ".join(words)
    variant = _cosmetic(words, gaps, upper, wide)
    assert content_hash("Title", plain) == content_hash("title:", variant)
    assert content_hash(plain, "body") == content_hash(f" {variant}!", "BODY")
    changed = [*words[:-1], words[-1] + "x"] if change_word else words[:-1]
    assert content_hash("Title", plain) != content_hash("Title", " ".join(changed))


def test_content_hash_keeps_words_apart_and_title_apart_from_text() -> None:
    assert content_hash("a", "therapist") != content_hash("a", "the rapist")
    assert content_hash("a b", "c") != content_hash("a", "b c")
    assert content_hash("x", "3.14") != content_hash("x", "314")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60))
def test_content_hash_reads_ascii_text_as_the_unicode_path_does(text: str) -> None:
    # A no-break space is not ASCII, so it sends the text down the Unicode path, where it
    # only separates words.
    assert content_hash("t", text) == content_hash("t", text + "\u00a0")


def _split_path(url: str) -> str | None:
    """canonical_url through urlsplit alone, the definition the plain-URL path must meet."""
    if not url or len(url) > 4000:
        return None
    try:
        return _canonical_split(url.strip())
    except (ValueError, UnicodeError):
        return None


URL_PIECES = st.sampled_from(
    [
        "https://",
        "http://",
        "HTTPS://",
        "ftp://",
        "example.com",
        "outlet7.example",
        "xn--bcher-kva.example",
        "a..b",
        "-bad.example",
        "Example.COM",
        "ex_ample.org",
        ":443",
        ":8080",
        ":bad",
        "user@",
        "[::1]",
        "/",
        "/a/b",
        "/./",
        "/../",
        "/.well-known",
        "/%7e",
        "/%zz",
        "/ü",
        "/a b",
        "?",
        "?utm_source=rss",
        "?b=2&a=1",
        "?q=%41&x=?y",
        "&fbclid=1",
        "#frag",
        "#a\nb",
        "\t",
        "\n",
        " ",
        ".",
        "é",
        "\x00",
        "~",
        "'()*+,;=",
    ]
)


@settings(max_examples=1500, deadline=None)
@given(st.lists(URL_PIECES, max_size=8).map("".join))
def test_plain_url_path_gives_what_urlsplit_gives(url: str) -> None:
    assert canonical_url(url) == _split_path(url)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=60).map(lambda tail: "https://example.com" + tail))
def test_plain_url_path_gives_what_urlsplit_gives_on_any_tail(url: str) -> None:
    assert canonical_url(url) == _split_path(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://outlet3.example/3/7?utm_source=rss",
        "http://a.b/",
        "https://a.b",
        "https://a.b?",
        "https://a.b#x",
        "https://a.b/x/./y/../z",
        "https://a.b/x/.",
        "https://" + "a" * 63 + ".example/",
        "https://" + "a" * 64 + ".example/",
        "https://" + ".".join(["abcdefgh"] * 30) + "/",
        "https://xn--bcher-kva.example/",
        "https://xn--zz.example/",
    ],
)
def test_plain_url_path_on_edges(url: str) -> None:
    assert canonical_url(url) == _split_path(url)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
def test_plain_ascii_titles_take_the_fast_path_to_the_same_key(title: str) -> None:
    from bot.normalise import _words

    assert normalise_title(title) == " ".join(_words(title))
