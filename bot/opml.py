"""OPML import and export of the feed list."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

MAX_OPML_BYTES = 5 * 1024 * 1024


class OPMLError(ValueError):
    pass


@dataclass(frozen=True)
class Outline:
    url: str
    title: str | None = None
    site_url: str | None = None
    category: str | None = None


def parse_opml(data: bytes) -> list[Outline]:
    if len(data) > MAX_OPML_BYTES:
        raise OPMLError("OPML file is larger than 5 MB")
    if b"<!DOCTYPE" in data[:4096].upper() or b"<!ENTITY" in data.upper():
        raise OPMLError("OPML with a DOCTYPE or entity declarations is refused")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise OPMLError(f"not valid OPML: {exc}") from None
    if root.tag != "opml":
        raise OPMLError(f"not OPML: root element is <{root.tag}>")
    outlines: list[Outline] = []
    seen: set[str] = set()
    for node in root.iter("outline"):
        url = (node.get("xmlUrl") or node.get("xmlurl") or "").strip()
        if not url or url in seen:
            continue
        seen.add(url)
        outlines.append(
            Outline(
                url=url,
                title=node.get("title") or node.get("text"),
                site_url=node.get("htmlUrl"),
                category=node.get("category"),
            )
        )
    return outlines


def render_opml(outlines: list[Outline], title: str = "briefbot feeds") -> str:
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    body = ET.SubElement(root, "body")
    for o in outlines:
        attrs = {"type": "rss", "text": o.title or o.url, "xmlUrl": o.url}
        if o.title:
            attrs["title"] = o.title
        if o.site_url:
            attrs["htmlUrl"] = o.site_url
        if o.category:
            attrs["category"] = o.category
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode")
