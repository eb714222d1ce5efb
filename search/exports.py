"""Reading-list exports: Markdown, CSV, BibTeX and RIS.

:meth:`search.lists.ReadingLists.export` reads a list's items and hands them
here; each writer turns a :class:`~search.lists.ReadingList` and its
:class:`~search.lists.ListItem` snapshots into the text of one file. The CLI
and the UI import :data:`FORMATS` and :data:`FORMAT_FILES` from here for their
choices and file names.

BibTeX is written by bibtexparser and RIS by rispy (the tests read both back
with the same libraries); what we give them stays ours, each for a reason:

- values are escaped by :func:`bib_escape`: bibtexparser's writer escapes
  nothing, and its LaTeX encoder writes ``\\{`` for a brace, which BibTeX
  counts, so one odd brace in a title would unbalance the rest of the file;
- citation keys come from :func:`_bib_key` (``dfe2018``, ``dfe2018a``):
  bibtexparser only refuses a duplicate key, it does not make one;
- RIS values pass through :func:`one_line`: rispy writes a value as given,
  and a newline in a note would start a line without a tag.

Markdown and CSV need no library beyond the csv module.
"""
from __future__ import annotations

import csv
import io
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .lists import WORDS_PER_MINUTE, reading_minutes

if TYPE_CHECKING:
    from .lists import ListItem, ReadingList

FORMATS = ("md", "csv", "bibtex", "ris")
#: File name suffix and MIME type per export format (for downloads and -o).
FORMAT_FILES = {
    "md": (".md", "text/markdown"),
    "csv": (".csv", "text/csv"),
    "bibtex": (".bib", "application/x-bibtex"),
    "ris": (".ris", "application/x-research-info-systems"),
}


def render(fmt: str, rl: ReadingList, items: list[ListItem]) -> str:
    """The list as the text of a ``fmt`` file (``fmt`` one of :data:`FORMATS`)."""
    return {"md": to_markdown, "csv": to_csv, "bibtex": to_bibtex, "ris": to_ris}[fmt](rl, items)


def one_line(text: str) -> str:
    return " ".join((text or "").split())


# -- Markdown -------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#&])")


def _md(text: str) -> str:
    """Backslash-escape Markdown/HTML syntax so text shows as written."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C").replace(">", "%3E")


def _status_note(item: ListItem) -> str:
    if item.status == "changed":
        return "the source has changed since this passage was added; the passage is quoted as it was"
    if item.status == "removed":
        return "the source is no longer in the store; the citation is kept as it was"
    return ""


def to_markdown(rl: ReadingList, items: list[ListItem]) -> str:
    total = sum(i.words for i in items)
    today = datetime.now(timezone.utc).date().isoformat()
    out = [
        f"# {_md(rl.name)}",
        "",
        f"{len(items)} item{'s' if len(items) != 1 else ''}, about {reading_minutes(total)} min of reading "
        f"(at {WORDS_PER_MINUTE} words a minute). Exported from equisearch on {today}.",
    ]
    for item in items:
        out += ["", f"## {item.position}. {_md(one_line(item.title) or item.uri)}", ""]
        bits = [b for b in (item.author, item.site, item.kind, item.date, item.location) if b]
        what = "Passage" if item.item_type == "passage" else "Whole source"
        out.append(_md(" · ".join([what, *bits])) + f" · {item.reading_minutes} min  ")
        target = item.web_url or item.link or item.uri
        out.append(f"[{_md(target)}]({_md_url(target)})" if target else "")
        if item.item_type == "passage" and item.text:
            out.append("")
            out += ["> " + _md(line) if line.strip() else ">" for line in item.text.splitlines()]
        if item.note:
            out += ["", "**Note:** " + _md(item.note).replace("\n", "  \n")]
        if _status_note(item):
            out += ["", f"*({_status_note(item)})*"]
    return "\n".join(out) + "\n"


# -- CSV -------------------------------------------------------------------------
CSV_COLUMNS = ("position", "type", "title", "author", "site", "kind", "date", "location", "url", "passage",
               "note", "words", "reading_minutes", "status", "uri")


def to_csv(rl: ReadingList, items: list[ListItem]) -> str:
    """RFC 4180 CSV (quotes and newlines in notes handled by the csv module)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for i in items:
        w.writerow([i.position, i.item_type, i.title, i.author, i.site, i.kind, i.date, i.location,
                    i.web_url or i.link, i.text, i.note, i.words, i.reading_minutes, i.status, i.uri])
    return buf.getvalue()


# -- BibTeX ----------------------------------------------------------------------
_BIB_REPORT_KINDS = {"report", "inspection", "guidance"}
_BIB_CHARS = {
    "\\": r"\textbackslash{}", "{": r"\textbraceleft{}", "}": r"\textbraceright{}", "%": r"\%", "&": r"\&",
    "$": r"\$", "#": r"\#", "_": r"\_", "^": r"\textasciicircum{}", "~": r"\textasciitilde{}",
}
_BIB_RE = re.compile("|".join(re.escape(c) for c in _BIB_CHARS))


def bib_escape(text: str) -> str:
    """Escape LaTeX specials; braces become commands so every field stays balanced.

    BibTeX counts ``\\{`` as a brace, so an odd brace in a title would break
    the whole file; ``\\textbraceleft{}`` keeps the braces balanced.
    """
    return _BIB_RE.sub(lambda m: _BIB_CHARS[m.group(0)], one_line(text))


def _bib_url(url: str) -> str:
    """A URL safe inside a braced field: no braces, spaces or backslashes."""
    return (url.replace("\\", "%5C").replace("{", "%7B").replace("}", "%7D").replace(" ", "%20")
            .replace("\t", "%09").replace("\n", ""))


def _bib_key(item: ListItem, used: set[str]) -> str:
    base_src = item.author.split(",")[0].split(" and ")[0] if item.author else (item.site or item.title)
    word = next((w for w in re.findall(r"[A-Za-z0-9]+", _ascii(base_src)) if len(w) > 1), "source").lower()
    base = f"{word[:20]}{item.year or 'nd'}"
    key, n = base, 0
    while key in used:
        n += 1
        key = base + _suffix(n)
    used.add(key)
    return key


def _suffix(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(97 + r) + s
    return s


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _note_text(item: ListItem) -> str:
    parts = []
    if item.item_type == "passage":
        where = f" ({item.location})" if item.location else ""
        parts.append(f"Passage{where}: “{one_line(item.text)}”")
    else:
        parts.append("Whole source")
    if item.note:
        parts.append(f"Note: {one_line(item.note)}")
    if _status_note(item):
        parts.append(_status_note(item).capitalize())
    parts.append(f"Reading list: {item.reading_minutes} min")
    return ". ".join(p.rstrip(".") for p in parts) + "."


def _bib_format():
    """Two-space indent, a blank line between blocks: the layout we wrote by hand."""
    from bibtexparser import BibtexFormat

    fmt = BibtexFormat()
    fmt.indent = "  "
    fmt.block_separator = "\n"  # each block ends with its own newline
    return fmt


def to_bibtex(rl: ReadingList, items: list[ListItem]) -> str:
    """One entry per item: @techreport for reports, inspections and guidance
    with a publisher, @misc otherwise; url, year, howpublished and note.

    bibtexparser writes the entries (``@type{key,``, ``name = {value}``, the
    closing brace) from values already escaped here (see the module docstring).
    """
    import bibtexparser  # lazy: it imports pylatexenc, ~40 ms the CLI's start-up does not need
    from bibtexparser.model import Entry, Field, ImplicitComment

    used: set[str] = set()
    # BibTeX reads text outside entries as a comment up to the next "@", where
    # an entry starts ("a@b (draft)" would open @b), so the name's @ is spelt out.
    name = bib_escape(rl.name).replace("@", "(at)")
    blocks: list = [ImplicitComment(f"% Reading list: {name} (exported from equisearch)")]
    for item in items:
        report = item.kind in _BIB_REPORT_KINDS and bool(item.site)
        fields = [Field("title", "{" + bib_escape(item.title or item.uri) + "}")]  # inner braces keep its case
        if item.author:
            fields.append(Field("author", bib_escape(item.author)))
        if report:
            fields.append(Field("institution", bib_escape(item.site)))
            fields.append(Field("type", bib_escape(item.kind.capitalize())))
        elif item.site:
            fields.append(Field("organization", bib_escape(item.site)))
        if item.year:
            fields.append(Field("year", item.year))
        url = item.web_url
        if url:
            fields.append(Field("url", _bib_url(url)))
            if not report:
                fields.append(Field("howpublished",
                                    r"\url{" + _bib_url(url).replace("%", r"\%").replace("#", r"\#") + "}"))
        elif not report and item.site:
            fields.append(Field("howpublished", bib_escape(item.site)))
        if item.item_type == "passage" and item.page_start is not None:
            pages = str(item.page_start)
            if item.page_end and item.page_end != item.page_start:
                pages += f"--{item.page_end}"
            fields.append(Field("pages", pages))
        fields.append(Field("note", bib_escape(_note_text(item))))
        blocks.append(Entry("techreport" if report else "misc", _bib_key(item, used), fields))
    # The default unparse stack encloses every value in braces, numbers too.
    return bibtexparser.write_string(bibtexparser.Library(blocks), bibtex_format=_bib_format())


# -- RIS ---------------------------------------------------------------------------
def _ris_type(item: ListItem) -> str:
    if item.kind in _BIB_REPORT_KINDS:
        return "RPRT"
    if item.kind == "transcript":
        return "VIDEO"
    return "ELEC" if item.web_url else "GEN"


def _ris_writer():
    """rispy's RIS writer with CRLF line ends and no ``1.`` line before each record.

    The RIS specification ends lines with CRLF; the record-number lines rispy
    writes by default are not RIS tags (every line of our file is one).
    """
    import rispy  # lazy, like bibtexparser

    class Writer(rispy.RisWriter):
        NEWLINE = "\r\n"

        def set_header(self, count: int) -> str:
            return ""

    return Writer()


def _ris_record(rl: ReadingList, item: ListItem) -> dict:
    """The item as a rispy record: keys from rispy's tag mapping, in the order
    they are written, empty values left out; :func:`one_line` because rispy
    writes a value as given and a newline in one would start an untagged line."""
    record: dict = {"type_of_reference": _ris_type(item)}

    def put(key: str, value) -> None:
        value = one_line(str(value)) if value is not None else ""
        if value:
            record[key] = value

    def add(key: str, value) -> None:
        value = one_line(str(value)) if value is not None else ""
        if value:
            record.setdefault(key, []).append(value)

    put("title", item.title or item.uri)                                   # TI
    for author in re.split(r"\s+and\s+|;", item.author or ""):
        add("authors", author)                                             # AU
    put("year", item.year)                                                 # PY
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", item.date or ""):
        put("date", item.date.replace("-", "/") + "/")                     # DA
    put("publisher", item.site)                                            # PB
    add("urls", item.web_url or item.link)                                 # UR
    if item.item_type == "passage" and item.page_start is not None:
        put("start_page", item.page_start)                                 # SP
        put("end_page", item.page_end or item.page_start)                  # EP
    add("notes", _note_text(item))                                         # N1
    add("keywords", item.kind)                                             # KW
    add("keywords", f"reading list: {rl.name}")
    return record


def to_ris(rl: ReadingList, items: list[ListItem]) -> str:
    """RIS records (``TY`` ... ``ER``), CRLF line ends, one value per line;
    rispy writes the records (an empty list is an empty file)."""
    return _ris_writer().formats([_ris_record(rl, item) for item in items])
