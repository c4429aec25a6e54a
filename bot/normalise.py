"""Canonical URLs and dedupe keys.

Every function here accepts junk from feeds and never raises: a URL that cannot be made
canonical (not http/https, no host, bad port, unencodable host) gives ``None``.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from urllib.parse import quote, unquote, urlsplit

from bot.casing import lower

_TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "igsh",
        "ref_src",
        "ref_url",
        "_hsenc",
        "_hsmi",
        "__hstc",
        "__hssc",
        "__hsfp",
        "hsctatracking",
        "yclid",
        "msclkid",
        "twclid",
        "ttclid",
        "li_fat_id",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "vero_conv",
        "_ga",
        "_gl",
        "wt.mc_id",
        "ncid",
        "ocid",
        "cmpid",
        "sr_share",
        "at_medium",
        "at_campaign",
        "s_kwcid",
        "rb_clickid",
        "srsltid",
    }
)
_TRACKING_PREFIXES = ("utm_", "hsa_", "pk_", "mtm_", "stm_")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_URL = 4000
# RFC 3986 unreserved characters never need percent-encoding.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_HOST_JUNK = re.compile(r"[\s/\\@]")  # \s is str.isspace()
_PATH_SAFE = "/:@!$&'()*+,;=~"
# The usual shape of a feed link, which `_canonical` can take apart without `urlsplit`: a
# lower-case scheme and DNS name, no user or port, a path with nothing to escape or decode,
# a query of printable ASCII. What `urlsplit` would make of it is plain (see _canonical).
_PLAIN_URL = re.compile(
    rf"(https?)://({_LABEL}(?:\.{_LABEL})*)"
    r"(/[A-Za-z0-9\-._~/:@!$&'()*+,;=]*)?"
    r"(?:\?([!\"$-~]*))?"
    r"(?:#.*)?"
)
_WORDS = re.compile(r"\w+(?:[.'’]\w+)*")
_ALNUM_RUNS = re.compile(r"[^\W_]+")
# ASCII letters lower-cased, digits kept, every other byte a space (as _ALNUM_RUNS splits).
_ASCII_WORD_BYTES = bytes(b if bytes([b]).isalnum() else 32 for b in bytes(range(256)).lower())
_SPACE_RUN = re.compile(rb"  +")


def canonical_url(url: str | None) -> str | None:
    """The form of ``url`` used for dedupe, or None when it is not a usable http(s) URL."""
    if not url or len(url) > _MAX_URL:
        return None
    try:
        return _canonical(url.strip())
    except (ValueError, UnicodeError):
        return None


def _canonical(url: str) -> str | None:
    plain = _PLAIN_URL.fullmatch(url)
    if plain is None or len(plain[2]) > 253 or "xn--" in plain[2]:
        return _canonical_split(url)
    # urlsplit would give this scheme, this host as hostname, no port, this path and query
    # (neither holds "#", the path no "?"), and the fragment, dropped anyway; the host
    # already passes _ascii_host, and the path needs no escaping.
    scheme, host, path, query = plain.groups(default="")
    if not path or "/." in path:
        path = _normalise_path(path)
    query = _normalise_query(query) if query else ""
    return f"{scheme}://{host}{path}?{query}" if query else f"{scheme}://{host}{path}"


def _canonical_split(url: str) -> str | None:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    hostname = parts.hostname
    if scheme not in _DEFAULT_PORTS or not hostname:
        return None
    host = _ascii_host(hostname)
    if host is None:
        return None
    port = parts.port  # raises ValueError on a junk port
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = _normalise_path(parts.path)
    query = _normalise_query(parts.query)
    # What urlunsplit gives for a non-empty netloc and a path that starts with "/".
    return f"{scheme}://{netloc}{path}?{query}" if query else f"{scheme}://{netloc}{path}"


def _ascii_host(hostname: str) -> str | None:
    host = lower(hostname.rstrip("."))
    if not host or _HOST_JUNK.search(host):
        return None
    if host.startswith("[") or ":" in host:  # IPv6 literal
        return f"[{host.strip('[]')}]"
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    return host if _valid_dns_name(host) else None


def _valid_dns_name(host: str) -> bool:
    if len(host) > 253 or not _DNS_NAME.fullmatch(host):
        return False
    if "xn--" not in host:
        return True
    return all(_punycode_ok(label[4:]) for label in host.split(".") if label.startswith("xn--"))


def _punycode_ok(encoded: str) -> bool:
    try:
        return bool(encoded.encode("ascii").decode("punycode"))
    except UnicodeError:
        return False


def _normalise_escapes(text: str, safe: str) -> str:
    """Upper-case percent escapes, decode unreserved ones, escape what must be escaped."""
    if _already_plain(text, safe):  # the common case: nothing to change
        return text

    def fix(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    return quote(_PERCENT.sub(fix, text), safe=safe + "%")


@functools.lru_cache(maxsize=8)
def _plain_pattern(safe: str) -> re.Pattern[str]:
    allowed = "".join(sorted(_UNRESERVED | set(safe)))
    return re.compile(f"[{re.escape(allowed)}]*")


def _already_plain(text: str, safe: str) -> bool:
    """True when ``text`` has no escape and nothing ``quote`` would escape."""
    return _plain_pattern(safe).fullmatch(text) is not None


def _normalise_path(path: str) -> str:
    if path.startswith("/") and "/." not in path:  # no "." or ".." segment to resolve
        return _normalise_escapes(path, safe=_PATH_SAFE)
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(segments) > 1:
                segments.pop()
        elif segment != ".":
            segments.append(segment)
    if path.endswith(("/.", "/..")):
        segments.append("")
    joined = "/".join(segments)
    if not joined.startswith("/"):
        joined = "/" + joined
    return _normalise_escapes(joined, safe=_PATH_SAFE)


def _normalise_query(query: str) -> str:
    kept: list[tuple[str, str]] = []
    for piece in query.split("&"):
        if not piece:
            continue
        raw_key, _, _ = piece.partition("=")
        key = lower(unquote(raw_key.replace("+", " ")).strip())
        if key in _TRACKING_PARAMS or key.startswith(_TRACKING_PREFIXES):
            continue
        fixed = _normalise_escapes(piece, safe="=:@!$'()*+,;/?~")
        kept.append((fixed.partition("=")[0], fixed))
    return "&".join(piece for _, piece in sorted(kept))


def guid_key(feed_id: int | str, guid: str) -> str:
    """Dedupe key for an entry id within one feed (ids are only unique per feed)."""
    return _sha256(f"guid\x00{feed_id}\x00{guid.strip()}")


def url_key(url: str | None) -> str | None:
    """Fixed-length key of the canonical URL (URLs can be too long to index well)."""
    canonical = canonical_url(url)
    return _sha256(f"url\x00{canonical}") if canonical else None


def normalise_title(title: str) -> str:
    """Lower-case, compatibility-folded words with punctuation and whitespace dropped."""
    if title.isascii() and "." not in title and "'" not in title:
        # No word then joins two runs of letters and digits: the words are those runs,
        # which content_hash's fast path finds far cheaper than the regex.
        return _hashed_words(title).decode("ascii")
    return " ".join(_words(title))


def title_key(source: str, title: str) -> str | None:
    """Key for "the same headline from the same source"; None for an empty title."""
    normalised = normalise_title(title)
    if not normalised:
        return None
    return _sha256(f"title\x00{lower(source.strip())}\x00{normalised}")


def content_hash(title: str, text: str) -> str:
    """sha256 hex of the title's and text's words: equal for cosmetic differences only.

    A word is a run of letters and digits after case and Unicode compatibility folding;
    whitespace, punctuation and symbols only separate words.
    """
    digest = hashlib.sha256(_hashed_words(title))
    digest.update(b"\n")
    digest.update(_hashed_words(text))
    return digest.hexdigest()


def _hashed_words(text: str) -> bytes:
    if text.isascii():  # the common case, in C: fold bytes, then one space between words
        spaced = text.encode("ascii").translate(_ASCII_WORD_BYTES)
        return _SPACE_RUN.sub(b" ", spaced).strip()
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_ALNUM_RUNS.findall(folded)).encode()


def _words(text: str) -> list[str]:
    if text.isascii():  # NFKC leaves ASCII alone, and casefold is lower for it
        folded = lower(text)
    else:
        folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    return _WORDS.findall(folded.replace("_", " "))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
