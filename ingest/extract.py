"""Turning files and fetched bodies into segments with provenance.

One function per format, all returning :class:`~ingest.segments.Extracted`:
paragraphs as segments, with the page (PDF), time span (VTT/SRT), speaker
(transcripts, "Name: text" threads) and section heading (Markdown) that a
citation needs. Every failure is an :class:`ExtractionError` whose message
names the problem and what to do; no extractor returns an empty document.

Formats: .txt, .md/.markdown, .gs (GOV.UK govspeak), .rst (docutils), .html/.htm (trafilatura),
.pdf (pypdf), .vtt and .srt.
"""
from __future__ import annotations

import datetime as _dt
import html as _html
import io
import json
import logging
import re
from collections import Counter
from pathlib import Path

from search.errors import ExtractionError, UnsupportedSource

from . import charset, pdf_layout
from .segments import Extracted, Segment

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".gs", ".rst", ".html", ".htm", ".pdf", ".vtt", ".srt"})


def extract_file(path: Path, data: bytes | None = None) -> Extracted:
    """Extract a local file, dispatching on its suffix.

    ``data`` is the file's bytes when the caller has read them already (the
    pipeline hashes them first): reading once keeps memory at one copy and the
    hash and the text from the same version of the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise UnsupportedSource(
            f"{path}: unsupported file type {suffix or '(none)'}: equisearch reads {', '.join(sorted(SUPPORTED_SUFFIXES))}"
        )
    try:
        if data is None:
            data = path.read_bytes()
    except OSError as exc:
        raise ExtractionError(f"{path}: cannot read ({exc.strerror}): check the path and permissions") from exc
    if not data.strip():
        raise ExtractionError(f"{path}: the file is empty: check it was saved or downloaded completely")
    if suffix == ".pdf":
        result = extract_pdf_bytes(data, str(path))
    elif suffix in (".html", ".htm"):
        # The page's own <meta charset> is honoured (and checked) for local files too.
        result = extract_html(charset.decode_html(data, str(path)), url="", name=str(path))
    else:
        result = extract_text(decode_text(data, str(path)), str(path), suffix)
    result.meta.setdefault("title", "")
    if not result.meta["title"]:
        result.meta["title"] = _title_from_stem(path.stem)
    return result


def _title_from_stem(stem: str) -> str:
    return re.sub(r"[_\-]+", " ", stem).strip().capitalize() or stem


def _nonempty(result: Extracted, name: str) -> Extracted:
    result.segments = [s for s in result.segments if s.text.strip()]
    if not result.segments:
        raise ExtractionError(f"{name}: contains no text to index: check it is the file you meant")
    return result


# -- text decoding --------------------------------------------------------------
def decode_text(data: bytes, name: str) -> str:
    """A text file's bytes to text (:func:`ingest.charset.decode_text`); binary is refused."""
    return charset.decode_text(data, name)


# -- plain text, markdown, transcripts ---------------------------------------
_SPEAKER_LINE = re.compile(r"^([A-Z][\w.'\-]*(?: [A-Z][\w.'\-]*){0,3}|[a-z][\w.\-]{2,30}):\s+(\S.*)$")


def extract_text(text: str, name: str, suffix: str) -> Extracted:
    """Text formats: .txt, .md/.markdown/.gs, .rst, .vtt, .srt."""
    suffix = suffix.lower()
    if suffix == ".vtt" or (suffix == ".txt" and text.lstrip().startswith("WEBVTT")):
        return _nonempty(parse_vtt(text, name), name)
    if suffix == ".srt":
        return _nonempty(parse_srt(text, name), name)
    if suffix in (".md", ".markdown", ".gs"):
        return _nonempty(extract_markdown(text, name, govspeak=suffix == ".gs"), name)
    if suffix == ".rst":
        from .rst import extract_rst

        return _nonempty(extract_rst(text, name), name)
    return _nonempty(extract_plain(text), name)


def extract_plain(text: str) -> Extracted:
    """Blank-line paragraphs; "Name: text" lines become speaker segments."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    speaker_lines = [m for m in (_SPEAKER_LINE.match(ln) for ln in lines) if m]
    meta: dict = {"kind": "article"}
    if lines and len(speaker_lines) >= max(3, len(lines) * 0.6):
        segments = []
        for ln in lines:
            m = _SPEAKER_LINE.match(ln)
            if m:
                segments.append(Segment(ln, speaker=m.group(1)))
            elif segments:  # continuation of the previous speaker
                prev = segments[-1]
                segments[-1] = prev.with_text(prev.text + " " + ln)
            else:
                segments.append(Segment(ln))
        meta["kind"] = "transcript"
    else:
        segments = [Segment(_join_wrapped(p)) for p in re.split(r"\n\s*\n", text) if p.strip()]
    first = lines[0] if lines else ""
    if first and len(first) < 150 and not first.endswith((".", ",", ";", ":")):
        meta["title"] = first.lstrip("#").strip()
    return Extracted(segments, meta)


def _join_wrapped(paragraph: str) -> str:
    """Join hard-wrapped lines with spaces, keeping list items on their own lines."""
    out: list[str] = []
    for line in paragraph.split("\n"):
        s = line.strip()
        if not s:
            continue
        if out and not re.match(r"^([•\-*–·]|\d{1,2}[.)])\s", s):
            out[-1] = out[-1] + " " + s
        else:
            out.append(s)
    return "\n".join(out)


_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*\n", re.S)
_SCRIPT_STYLE = re.compile(r"<(script|style|iframe|svg|noscript)\b[^>]*>.*?</\1\s*>|<iframe\b[^>]*/?>", re.S | re.I)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
_GOVSPEAK_MARKERS = re.compile(r"^\s*(\{/?[a-z_ ]+\}|\$[A-Z]{1,3}|:::.*|\{:[^}]*\}|\[/?[A-Z][A-Za-z]*\])\s*$")
_CHART_BLOCK = re.compile(r"^:{3,}\s*(visuali[sz]ation|chart|graph|data|figure)\b", re.I)
_YOUTUBE_EMBED = re.compile(r"youtube(?:-nocookie)?\.com/embed/([\w-]{6,20})")
_TRANSCRIPT_START = re.compile(r"^\s*(video )?transcript\.?\s*:?\s*$", re.I)


def _front_matter(text: str, name: str) -> tuple[dict, str]:
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text
    meta: dict = {}
    try:
        import yaml

        # GOV.UK prototypes leave trailing tabs, which YAML forbids.
        data = yaml.safe_load(m.group(1).replace("\t", " "))
        if isinstance(data, dict):
            meta = data
    except Exception as exc:  # malformed YAML: keep the text, drop the block
        log.warning("%s: ignoring malformed front matter (%s)", name, exc)
    return meta, text[m.end():]


def _iso_date(value) -> str:
    if isinstance(value, (_dt.date, _dt.datetime)):
        return value.isoformat()[:10]
    if value is None:
        return ""
    s = str(value).strip()
    m = re.match(r"(\d{4})-(\d{2})-(\d{2})", s)
    if m:
        return m.group(0)
    m = re.match(r"(\d{1,2})/(\d{1,2})/(\d{4})", s)
    if m:
        return f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}"
    return s[:10] if re.match(r"\d{4}", s) else ""


def _looks_like_json(text: str) -> bool:
    """A paragraph that is a JSON object or array (chart settings), not prose."""
    t = text.strip()
    if not (t[:1] in "{[" and t[-1:] in "}]"):
        return False
    try:
        json.loads(t)
        return True
    except ValueError:
        return t.count('":') >= 3  # truncated or commented JSON is still not prose


def _inline_markdown(line: str) -> str:
    line = re.sub(r"!\[[^\]]*\]\([^)]*\)", "", line)  # images
    line = re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", line)  # links
    line = re.sub(r"\[([^\]]+)\]\[[^\]]*\]", r"\1", line)
    line = re.sub(r"(\*\*|__)(.+?)\1", r"\2", line)
    line = re.sub(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])", r"\1", line)
    line = re.sub(r"(?<![\w_])_(?!\s)(.+?)(?<!\s)_(?![\w_])", r"\1", line)
    line = re.sub(r"`([^`]+)`", r"\1", line)
    return line


def extract_markdown(text: str, name: str, *, govspeak: bool = False) -> Extracted:
    """Markdown/govspeak: front matter to meta; headings to sections; HTML and
    chart scripts removed; video-transcript sections flagged."""
    fm, body = _front_matter(text, name)
    video = _YOUTUBE_EMBED.search(body)
    body = _COMMENT.sub("", body)
    body = _SCRIPT_STYLE.sub("", body)
    # Block-level HTML tags become paragraph breaks; inline ones vanish.
    body = re.sub(r"</?(p|div|br|li|ul|ol|h[1-6]|table|tr|section|article|details|summary)\b[^>]*>", "\n\n", body,
                  flags=re.I)
    body = _TAG.sub("", body)
    body = _html.unescape(body)

    segments: list[Segment] = []
    section = ""
    speaker = ""
    in_transcript = False
    first_heading = ""
    para: list[str] = []

    def flush_para():
        if para:
            joined = _join_wrapped("\n".join(para))
            if _looks_like_json(joined):
                para.clear()
                return
            if joined.strip():
                segments.append(Segment(joined, section=section, speaker=speaker if in_transcript else "",
                                        transcript=in_transcript))
            para.clear()

    in_chart = False
    for raw in body.split("\n"):
        line = raw.rstrip()
        stripped = line.strip()
        # ":::: visualisation ..." blocks hold chart configuration JSON, not text.
        if in_chart:
            if stripped.startswith(":::") and not _CHART_BLOCK.match(stripped):
                in_chart = False
            continue
        if _CHART_BLOCK.match(stripped):
            flush_para()
            in_chart = True
            continue
        if not stripped:
            flush_para()
            continue
        if _GOVSPEAK_MARKERS.match(stripped):
            flush_para()
            if stripped.lower() == "{/details}" and in_transcript:
                in_transcript = False
                speaker = ""
            continue
        if _TRANSCRIPT_START.match(stripped):
            flush_para()
            in_transcript = True
            continue
        if re.match(r"^\s*\|?\s*:?-{3,}", stripped):  # table rule
            continue
        heading = re.match(r"^(#{1,6})\s+(.*?)\s*#*$", stripped)
        if heading:
            flush_para()
            title = _inline_markdown(heading.group(2)).strip()
            if not title:
                continue
            first_heading = first_heading or title
            section = title
            if in_transcript:
                who = re.match(r"^[^:]{2,40}:\s*(.{2,60})$", title)
                speaker = who.group(1).strip() if who else speaker
            segments.append(Segment(title, section=section, transcript=in_transcript,
                                    speaker=speaker if in_transcript else ""))
            continue
        line = re.sub(r"^\s*[-*+]\s+", "• ", line)
        line = re.sub(r"^\s*>\s?", "", line)
        if "|" in line and line.count("|") >= 2:
            line = " ".join(cell.strip() for cell in line.strip().strip("|").split("|") if cell.strip())
        para.append(_inline_markdown(line))
    flush_para()

    meta: dict = {}
    title = str(fm.get("title") or "").strip()
    if not title or len(title.split()) == 1:
        # Generic titles ("Video", "Overview") say nothing in a citation: name
        # the file and its folder instead ("Year 1 behaviour: Autumn week 5 ect video").
        path = Path(name)
        stem = _title_from_stem(path.stem)
        folder = _title_from_stem(path.parent.name) if path.parent.name else ""
        title = f"{folder}: {stem}" if folder and folder != "." else (first_heading or stem)
    meta["title"] = title
    for key in ("date", "published", "updated_at", "public_updated_at", "first_published_at"):
        if fm.get(key):
            meta["date"] = _iso_date(fm[key])
            break
    if fm.get("author"):
        meta["author"] = str(fm["author"])
    if fm.get("description"):
        meta["description"] = str(fm["description"])
    tags = fm.get("tags")
    if isinstance(tags, list):
        meta["tags"] = [str(t) for t in tags]
    if video:
        # The embedded video is where a teacher should go: cite it.
        meta["url"] = f"https://www.youtube.com/watch?v={video.group(1)}"
    spoken = sum(len(s.text) for s in segments if s.transcript)
    total = sum(len(s.text) for s in segments) or 1
    if spoken / total > 0.5:
        meta["kind"] = "transcript"
    else:
        meta["kind"] = "guidance" if govspeak else "article"
    if spoken:
        meta["has_transcript"] = True
    return Extracted(segments, meta)


# -- VTT / SRT --------------------------------------------------------------------
_TIME = r"(?:(\d+):)?(\d{1,2}):(\d{2})[.,](\d{1,3})"
_CUE_TIMES = re.compile(rf"^\s*{_TIME}\s*-->\s*{_TIME}")


def _seconds(h, m, s, ms) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms.ljust(3, "0")) / 1000


def _cues(text: str, name: str) -> list[tuple[float, float, list[str]]]:
    cues = []
    bad = 0
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [ln for ln in block.split("\n") if ln.strip()]
        idx = next((i for i, ln in enumerate(lines) if "-->" in ln), None)
        if idx is None:
            continue
        m = _CUE_TIMES.match(lines[idx])
        if not m:
            bad += 1
            continue
        start = _seconds(*m.groups()[:4])
        end = _seconds(*m.groups()[4:])
        if end < start:
            bad += 1
            continue
        body = lines[idx + 1:]
        if body:
            cues.append((start, end, body))
    if bad:
        log.warning("%s: skipped %d invalid cue(s)", name, bad)
    if not cues:
        raise ExtractionError(f"{name}: no valid subtitle cues found: check it is a WebVTT/SRT file")
    return cues


def _cue_segments(cues, name: str) -> Extracted:
    segments: list[Segment] = []
    prev_last = ""
    for start, end, body in sorted(cues, key=lambda c: c[0]):
        speaker = ""
        texts = []
        for ln in body:
            v = re.match(r"<v(?:\.[^ >]*)?\s+([^>]+)>", ln)
            if v:
                speaker = v.group(1).strip()
            ln = re.sub(r"<[^>]+>", "", ln)
            ln = _html.unescape(ln).strip()
            if ln:
                texts.append(ln)
        # Rolling auto-captions repeat the previous cue's last line first.
        if texts and prev_last and texts[0] == prev_last:
            texts = texts[1:]
        if not texts:
            continue
        prev_last = texts[-1]
        segments.append(Segment(" ".join(texts), t_start=start, t_end=end, speaker=speaker, transcript=True))
    return Extracted(segments, {"kind": "transcript"})


def parse_vtt(text: str, name: str) -> Extracted:
    text = re.sub(r"\A\ufeff?WEBVTT[^\n]*\n", "", text)
    # NOTE / STYLE / REGION blocks are not cues.
    text = re.sub(r"(?m)^(NOTE|STYLE|REGION)\b.*?(?:\n\s*\n|\Z)", "\n\n", text, flags=re.S)
    return _cue_segments(_cues(text, name), name)


def parse_srt(text: str, name: str) -> Extracted:
    return _cue_segments(_cues(text, name), name)


# -- HTML -----------------------------------------------------------------------------
#: trafilatura's favor_precision leaves out more page furniture (related
#: links, author boxes, newsletter boxes: precision 0.942 -> 0.958 on the
#: Article Extraction Benchmark) but on a few pages throws most of the article
#: away; when it keeps less than this share of the default extraction, the
#: default is used (see bench/bench_extraction.py).
PRECISION_KEEPS = 0.5


def extract_html(html: str, url: str = "", name: str = "") -> Extracted:
    """Main text and metadata with trafilatura (comments excluded, precision
    favoured unless that loses most of the text); an lxml fallback for pages
    trafilatura finds no article in. Menus of links are removed first
    (:func:`_without_link_menus`) and the page's ``<hgroup>`` subtitle is
    kept (:func:`_hgroup_subtitle`). ``name`` (a file path) names the source
    in errors when there is no URL."""
    name = url or name or "HTML document"
    if not html.strip():
        raise ExtractionError(f"{name}: the page is empty: check the file or URL")
    page = _without_link_menus(html)
    data = _trafilatura(page, url, name, precision=False)
    default = (data.get("text") or "").strip()
    precise = (_trafilatura(page, url, name, precision=True).get("text") or "").strip()
    text = precise if len(precise) >= PRECISION_KEEPS * len(default) else default
    meta: dict = {"kind": "article"}
    if data.get("title"):
        meta["title"] = str(data["title"]).strip()
    if data.get("author"):
        meta["author"] = str(data["author"]).strip()
    if data.get("date"):
        meta["date"] = _iso_date(data["date"])
    if data.get("sitename"):
        meta["site"] = str(data["sitename"]).strip()
    if data.get("url"):
        meta["url"] = str(data["url"]).strip()
    if data.get("language"):
        meta["language"] = str(data["language"]).strip()
    if not text:
        text = _html_fallback(html)
        if not meta.get("title"):
            m = re.search(r"<title[^>]*>(.*?)</title>", html, re.S | re.I)
            if m:
                meta["title"] = _html.unescape(" ".join(m.group(1).split()))
    subtitle = _hgroup_subtitle(html)
    if subtitle and " ".join(subtitle.split()) not in " ".join(text.split()):
        text = f"{subtitle}\n{text}" if text.strip() else ""
    if not text.strip():
        raise ExtractionError(f"{name}: no readable text in the page (only scripts, frames or images?): save the article text or its PDF and ingest that")
    segments = [Segment(p.strip()) for p in re.split(r"\n\s*\n|\n", text) if p.strip()]
    return _nonempty(Extracted(segments, meta), name)


def _trafilatura(html: str, url: str, name: str, *, precision: bool) -> dict:
    """trafilatura's result as a dict ({} when it finds nothing or fails);
    metadata only for the default pass (the same page, the same metadata)."""
    import trafilatura

    try:
        doc = trafilatura.bare_extraction(
            html, url=url or None, include_comments=False, include_tables=True, with_metadata=not precision,
            favor_precision=precision,
        )
    except Exception as exc:  # trafilatura raises assorted lxml errors on broken markup
        log.warning("%s: trafilatura failed (%s); using the fallback", name, exc)
        return {}
    if doc is None:
        return {}
    return doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)


#: A list is a menu of links (to a site's other pages, to related articles)
#: when it has at least this many items, each of at most MENU_ITEM_WORDS
#: words and each opening with a link. On the Article Extraction Benchmark
#: no such list reaches our text, so the rule changes none of its 181 pages.
MENU_ITEMS = 4
MENU_ITEM_WORDS = 8


def _opens_with_link(item) -> bool:
    """The first words of a list item are the text of a link."""
    if (item.text or "").strip():
        return False
    for el in item.iterdescendants():
        if not isinstance(el.tag, str):
            continue
        if el.tag == "a":
            return bool(el.text_content().strip())
        if (el.text or "").strip() or (el.tail or "").strip():
            return False
    return False


def _without_link_menus(html: str) -> str:
    """The page without lists that are menus of links, and the heading over each.

    A list of short items that each open with a link ("Baumgutachten (diese
    Seite)", "Birke Baumbeschreibung") is a site's menu or a related-pages
    box even inside the article's container, where trafilatura's link-density
    test lets it through because the items' words are not all link text. The
    heading directly above it names the menu and goes too. Prose lists (an
    item with a sentence after its link, or one item without a link) stay.
    The page is re-serialised only when a menu was found.
    """
    if not re.search(r"<li\b", html, re.I):
        return html
    try:
        import lxml.html

        tree = lxml.html.document_fromstring(html)
    except Exception:  # lxml refuses some markup (an XML encoding declaration): trafilatura copes
        return html
    menus = []
    for lst in tree.iter("ul", "ol"):
        items = [li for li in lst if isinstance(li.tag, str) and li.tag == "li"]
        if len(items) >= MENU_ITEMS and len(items) == len([c for c in lst if isinstance(c.tag, str)]) \
                and all(0 < len(li.text_content().split()) <= MENU_ITEM_WORDS and _opens_with_link(li)
                        for li in items):
            menus.append(lst)
    if not menus:
        return html
    for lst in menus:
        heading = lst.getprevious()
        if heading is not None and heading.tag in ("h1", "h2", "h3", "h4", "h5", "h6") \
                and len(heading.text_content().split()) <= 12 and not (heading.tail or "").strip():
            heading.drop_tree()
        if lst.getparent() is not None:
            lst.drop_tree()
    return lxml.html.tostring(tree, encoding="unicode")


def _hgroup_subtitle(html: str) -> str:
    """The article's subtitle when the page marks it as one: "" otherwise.

    An ``<hgroup>`` holds a heading together with its subtitle (the HTML
    standard's definition); trafilatura takes the text from the article body
    and leaves the page header's subtitle out, though it is the author's own
    summary ("Risiken und Nebenwirkungen bergen nicht nur Medikamente, sondern
    auch politische Maßnahmen ..."). Only the first hgroup with an ``<h1>``
    counts (an hgroup without one heads a teaser box), only what follows the
    h1 (a kicker before it is a section label), and only sentences of 4+
    words that are not a link. Wider rules cost precision on the Article
    Extraction Benchmark, whose references leave standfirsts out: an h2 after
    the h1 inside any ``<header>`` 0.9665 -> 0.9656, anywhere 0.9611.
    """
    if not re.search(r"<hgroup\b", html, re.I):
        return ""
    try:
        import lxml.html

        tree = lxml.html.fromstring(html)
    except Exception:
        return ""
    for group in tree.iter("hgroup"):
        h1 = group.find(".//h1")
        if h1 is None or any(a.tag in ("aside", "nav", "footer") for a in group.iterancestors()):
            continue
        parts = []
        for el in h1.itersiblings():
            if not isinstance(el.tag, str) or el.tag not in ("h2", "h3", "h4", "h5", "h6", "p"):
                continue
            t = " ".join(el.text_content().split())
            linked = sum(len(" ".join(a.text_content().split())) for a in el.iter("a"))
            if len(t.split()) >= 4 and linked < len(t) / 2:
                parts.append(t)
        return "\n".join(parts)
    return ""


def _html_fallback(html: str) -> str:
    try:
        import lxml.html

        tree = lxml.html.fromstring(html)
    except Exception:
        return ""
    for bad in tree.xpath("//script|//style|//nav|//footer|//header|//aside|//form|//noscript|//iframe"):
        bad.drop_tree()
    blocks = []
    for el in tree.iter("p", "li", "td", "th", "h1", "h2", "h3", "h4", "pre", "blockquote"):
        t = " ".join(el.text_content().split())
        if t:
            blocks.append(t)
    return "\n\n".join(blocks)


# -- PDF ---------------------------------------------------------------------------------
_PAGE_NUMBER = re.compile(r"^\s*(page\s*)?\d{1,4}(\s*(of|/)\s*\d{1,4})?\s*$|^\s*\d{1,4}\s*\|.*$|^.*\|\s*\d{1,4}\s*$", re.I)


def extract_pdf_bytes(data: bytes, name: str) -> Extracted:
    """Per-page text with page numbers; running headers/footers removed; lines joined."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data.lstrip()[:5].startswith(b"%PDF"):
        raise ExtractionError(f"{name}: not a PDF file (no %PDF header): check the file")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            try:
                ok = reader.decrypt("")
            except Exception:
                ok = 0
            if not ok:
                raise ExtractionError(f"{name}: the PDF is encrypted: save an unencrypted copy and ingest that")
        pages = list(reader.pages)
    except ExtractionError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, RecursionError, AssertionError) as exc:
        raise ExtractionError(f"{name}: not a readable PDF ({type(exc).__name__}): re-save or re-download it") from exc
    except Exception as exc:  # pypdf raises many internal errors on damaged files
        raise ExtractionError(f"{name}: not a readable PDF ({type(exc).__name__}): re-save or re-download it") from exc

    page_lines: list[list[str]] = []
    sized_runs: list[tuple[float, str]] = []
    for i, page in enumerate(pages, start=1):
        try:
            # Page 1 is read with a visitor that records the type size of each
            # run of text: the title is the largest type on it.
            text = (page.extract_text(visitor_text=_size_visitor(sized_runs)) if i == 1 else page.extract_text()) or ""
        except Exception as exc:  # one damaged page must not lose the document
            log.warning("%s: page %d unreadable (%s); skipped", name, i, exc)
            text = ""
        page_lines.append([ln.rstrip() for ln in text.replace("\r", "\n").split("\n")])
    if not any(ln.strip() for lines in page_lines for ln in lines):
        raise ExtractionError(
            f"{name}: the PDF has no text layer (scanned images?): run OCR (e.g. ocrmypdf) and ingest the result"
        )
    furniture = _running_lines(page_lines)
    hyphenated = pdf_layout.hyphenated_words(ln for lines in page_lines for ln in lines)
    segments: list[Segment] = []
    numbering = pdf_layout.Numbering()
    previous_contents = False
    for number, lines in enumerate(page_lines, start=1):
        kept = []
        # The top and bottom three lines that have text: pages often open
        # with blank lines before the page number (Ofsted's " \n \n 4 ").
        filled = [j for j, ln in enumerate(lines) if ln.strip()]
        edges = set(filled[:3] + filled[-3:])
        for j, ln in enumerate(lines):
            key = _furniture_key(ln)
            if j in edges and (key in furniture or _PAGE_NUMBER.match(ln)):
                continue
            kept.append(ln)
        previous_contents = pdf_layout.is_contents_page(kept, previous_contents)
        kept = pdf_layout.drop_contents_lines(kept, previous_contents)
        paras, _ = pdf_layout.page_paragraphs(kept, hyphenated, numbering)
        segments += [Segment(p.text, page=number, kind=p.kind, label=p.label) for p in paras]
    # Kerning splits are judged against the whole document's words.
    counts = pdf_layout.word_counts(s.text for s in segments)
    segments = [s.with_text(pdf_layout.join_split_words(s.text, counts)[0]) for s in segments]
    meta = _pdf_meta(reader, name)
    if not meta.get("title") and page_lines:
        meta["title"] = _largest_type_title(page_lines[0], sized_runs) or _leading_title(page_lines[0])
    if not meta.get("title"):
        # Reports put their title near the top of page 1 as a short line.
        for seg in [s for s in segments if s.page == 1][:5]:
            words = seg.text.split()
            if 4 <= len(words) <= 16 and ":" not in seg.text and not seg.text.endswith(".") \
                    and sum(ch.isdigit() for ch in seg.text) < 4 and len(words) > 4:
                meta["title"] = seg.text.strip()
                break
    first_pages = " ".join(s.text for s in segments if s.page is not None and s.page <= 3).lower()
    all_text = " ".join(s.text for s in segments).lower()
    inspectorate = any(w in all_text for w in ("ofsted", "care quality commission"))
    titled = "inspection" in (str(meta.get("title", "")) + " " + first_pages).lower()
    meta["kind"] = "inspection" if inspectorate and titled else "report"
    if meta["kind"] == "inspection" and "ofsted" in all_text:
        # A teacher needs to see "Ofsted" beside the citation to know it is
        # an inspection finding, not an opinion piece.
        meta.setdefault("site", "Ofsted")
    return _nonempty(Extracted(segments, meta), name)


def _leading_title(lines: list[str]) -> str:
    """The title printed at the top of page 1, wrapped over a few lines.

    Reports open with short blocks of lines before the first one that reads
    like a label (":"), a sentence (".") or a date: a kicker ("Local area
    partnership report") and the title proper ("Area SEND inspection of
    Dorset Local / Area Partnership"), or just the title ("Inspection of
    Dudley local authority / children's services"). The longest block of 3-16
    words is the title; "" when there is none.
    """
    blocks: list[str] = []
    current = ""
    for raw in lines:
        line = " ".join(raw.split())
        if not line:
            if current:
                blocks.append(current)
                current = ""
            continue
        if ":" in line or line.endswith(".") or sum(ch.isdigit() for ch in line) >= 4:
            break
        # A line ending in a hyphen continues a hyphenated name: "Stoke-on-" / "Trent".
        current = current + line if current.endswith("-") else f"{current} {line}".strip()
    if current:
        blocks.append(current)
    fitting = [b for b in blocks if 3 <= len(b.split()) <= 16 and _plausible_title(b)]
    return max(fitting, key=lambda b: len(b.split())) if fitting else ""


def _furniture_key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.lower().split()))


def _running_lines(page_lines: list[list[str]]) -> set[str]:
    """Lines at the top or bottom of more than half the pages (digits ignored)."""
    if len(page_lines) < 3:
        return set()
    counts: Counter = Counter()
    for lines in page_lines:
        nonblank = [ln for ln in lines if ln.strip()]
        edges = {_furniture_key(ln) for ln in nonblank[:3] + nonblank[-3:]}
        counts.update(k for k in edges if k)
    return {k for k, c in counts.items() if c > len(page_lines) / 2}


def _pdf_paragraphs(lines: list[str]) -> list[str]:
    """Join wrapped lines into paragraphs (texts only; see :func:`ingest.pdf_layout.page_paragraphs`)."""
    paras, _ = pdf_layout.page_paragraphs(lines, pdf_layout.hyphenated_words(lines))
    return [p.text for p in paras]


def _size_visitor(runs: list[tuple[float, str]]):
    """A pypdf ``visitor_text`` that appends (type size in points, text) to ``runs``."""
    def visit(text, cm, tm, font_dict, font_size):
        if not text.strip():
            return
        try:
            # The size as printed: the font size scaled by the text and page matrices.
            scale = abs(float(tm[3]) * float(cm[3])) or 1.0
            runs.append((round(abs(float(font_size)) * scale, 1), text))
        except (TypeError, ValueError, IndexError):
            pass
    return visit


def _alnum(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _largest_type_title(lines: list[str], runs: list[tuple[float, str]]) -> str:
    """The title as printed on page 1: the lines set in its largest type.

    Type size is the one signal of a title that every layout shares; the
    lines of page 1 whose characters all come from the largest runs are the
    title, joined as one line ("Inspection of / Royal Borough of / Greenwich
    local authority children’s services"). A short title that only names a
    place ("Cheshire East Unitary Authority") gets the next-largest heading
    after it ("Inspection of services for children in need ..."), up to its
    first "and" line or label. "" when page 1 has no type larger than its
    body text.
    """
    if not runs:
        return ""
    chars: Counter = Counter()
    for size, text in runs:
        chars[size] += len(text.strip())
    body = chars.most_common(1)[0][0]
    sizes = sorted(chars, reverse=True)
    big = sizes[0]
    # On a cover page the title may be most of the text: compare with the
    # smallest type then, not the commonest.
    if big < sizes[-1] * 1.15 or (big == body and sum(chars.values()) > 600):
        return ""
    big_text = _alnum("".join(t for s, t in runs if s >= big - 0.5))
    # The next heading size, ignoring sizes used for a lone page number.
    second = next((s for s in sizes if body * 1.1 <= s < big - 0.5
                   and len(_alnum("".join(t for z, t in runs if z == s))) >= 10), None)
    second_text = _alnum("".join(t for s, t in runs if second is not None and abs(s - second) <= 0.5))

    def block(start: int, pool: str) -> tuple[list[str], int]:
        found: list[str] = []
        i = start
        while i < len(lines):
            line = " ".join(lines[i].split())
            key = _alnum(line)
            if not key:
                if found:
                    break
            elif len(key) >= 2 and key in pool and not (found and (line.split()[0] == "and" or ":" in line)):
                found.append(line)
            elif found or len(found) == 0 and i - start > 12:
                break
            i += 1
        return found, i

    title_lines, end = block(0, big_text)
    title = _join_title_lines(title_lines)
    if title and _names_a_place(title) and second_text:
        sub_lines, _ = block(end, second_text)
        sub = _join_title_lines(sub_lines)
        if 4 <= len(sub.split()) <= 24:
            title = f"{title}: {sub}"
    if title.isupper() and len(title.split()) > 3:
        title = title.capitalize()  # "CHILDHOOD TRAUMA, THE BRAIN AND THE SOCIAL WORLD"
    return title if _plausible_title(title) and len(title.split()) <= 40 else ""


def _plausible_title(title: str) -> bool:
    """Running text (an OCR layer, a pull quote) is not a title: no sentence
    break inside, no dangling hyphen or comma, two words at least."""
    return (len(title.split()) >= 2 and not re.search(r"[.;!?]\s+\S", title)
            and not title.endswith(("-", ",", ";")))


def _names_a_place(title: str) -> bool:
    """"Royal Borough of Greenwich", "Surrey County Council": a name, not a title."""
    words = title.split()
    return len(words) <= 8 and all(w[:1].isupper() or w in ("of", "and", "the", "upon", "on", "in") for w in words)


def _join_title_lines(lines: list[str]) -> str:
    out = ""
    for line in lines:
        # A line ending in a hyphen continues a hyphenated name: "Stoke-on-" / "Trent".
        out = out + line if out.endswith("-") else f"{out} {line}".strip()
    return out


def _pdf_meta(reader, name: str) -> dict:
    meta: dict = {}
    try:
        info = reader.metadata or {}
    except Exception:
        info = {}
    title = str(info.get("/Title") or "").strip()
    title = re.sub(r"^Microsoft (Word|PowerPoint) - ", "", title)
    # "Stoke-on- Trent": a line-wrap artefact inside a hyphenated name.
    title = re.sub(r"(\w)- (?=[A-Z])", r"\1-", " ".join(title.split()))
    # Template placeholders left in the metadata ("LA NAME - ... - INSPECTION
    # DATE") are not a title; the first page's title is used instead.
    placeholder = re.search(r"\b(NAME|DATE|TITLE|INSERT|TBC|XXX+)\b", title)
    # "Cheshire East - draft report": the working name of the Word file, not
    # the title printed on the report; and a title that is the file's own
    # name ("80495_greenwich...") says nothing the file name did not.
    draft = re.search(r"\bdraft\b", title, re.I)
    stem = Path(name).stem
    file_named = bool(title) and (_alnum(title) == _alnum(stem) or re.fullmatch(r"[\w\-]+", title) is not None
                                  and ("_" in title or sum(ch.isdigit() for ch in title) >= 4))
    if title and not (placeholder or draft or file_named) \
            and not re.fullmatch(r"(untitled|document\d*|.*\.(docx?|pptx?|pdf))", title, re.I):
        meta["title"] = title
    author = str(info.get("/Author") or "").strip()
    if author:
        meta["author"] = author
    raw = str(info.get("/CreationDate") or "")
    m = re.match(r"D:(\d{4})(\d{2})(\d{2})", raw)
    if m:
        meta["date"] = f"{m.group(1)}-{m.group(2)}-{m.group(3)}"
    return meta
