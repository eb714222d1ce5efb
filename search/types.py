"""Record types shared by every layer.

All records are frozen dataclasses: they are values read from or written to the
store, never mutated in place. Citations travel with chunks (page span, time
span, URL, char offsets), so nothing has to be reconstructed at answer time.
"""
from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime, timezone


def now_iso() -> str:
    """The time records are stamped with (UTC, seconds, ISO 8601)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()

#: Kinds of source a teacher can tell apart in an answer (statutory guidance is
#: not an opinion piece). ``other`` is the fallback when nothing is known.
KINDS = (
    "article",
    "report",
    "transcript",
    "forum",
    "guidance",
    "inspection",
    "event",
    "other",
)


def format_timestamp(seconds: float) -> str:
    """``mm:ss`` under an hour, ``h:mm:ss`` above, as video players show it."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:02d}:{secs:02d}"


@dataclass(frozen=True)
class Document:
    """One stored document: a file, a web page or a transcript.

    ``uri`` is the canonical location (absolute path or URL); ``aliases`` holds
    the other locations that led to the same text. ``content_hash`` is the hash
    of the raw bytes last ingested, which decides whether re-ingest does work;
    ``pipeline_version`` the version of the ingest pipeline (extraction,
    cleaning, chunking) that made its text ('' before versions were recorded).
    """

    id: int
    uri: str
    title: str
    site: str = ""
    kind: str = "other"
    date: str = ""
    author: str = ""
    url: str = ""
    language: str = ""
    tags: tuple[str, ...] = ()
    content_hash: str = ""
    added_at: str = ""
    updated_at: str = ""
    n_chunks: int = 0
    aliases: tuple[str, ...] = ()
    pipeline_version: str = ""


@dataclass(frozen=True)
class Chunk:
    """A passage of a document with everything needed to cite it.

    ``text == document_text[char_start:char_end]`` always holds, so a passage
    can be located in its document. Page numbers are 1-based; times are
    seconds from the start of the recording.
    """

    id: int
    doc_id: int
    ord: int
    text: str
    char_start: int
    char_end: int
    page_start: int | None = None
    page_end: int | None = None
    t_start: float | None = None
    t_end: float | None = None
    speaker: str = ""
    section: str = ""


def _is_web(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def serves_file(doc: "Document") -> bool:
    """True when ``doc.url`` answers with the document's file itself (the PDF),
    not with a page about it.

    A web source was fetched from its URL, so that URL serves what was stored;
    a URL given in a manifest serves the file when its path ends in the file's
    suffix (``.../guidance.pdf``). A GOV.UK landing page does not: a
    ``#page=N`` anchor on it does nothing.
    """
    if not _is_web(doc.url):
        return False
    if _is_web(doc.uri) and doc.url in (doc.uri, *doc.aliases):
        return True
    path = urllib.parse.urlsplit(doc.url).path.lower()
    suffix = os.path.splitext(doc.uri)[1].lower() if not _is_web(doc.uri) else ".pdf"
    return bool(suffix) and path.endswith(suffix)


@dataclass(frozen=True)
class Citation:
    """How to point a reader at a passage: where it is and a link to open it.

    ``link`` opens the source: at the passage (``#page=N`` on a URL that
    serves the PDF, ``t=N`` on a video) when ``link_at_location`` is true,
    else the source's page (a landing page, an article); for a local file
    with no URL it is a ``file://`` link, which only the machine holding the
    file can open. ``file`` is the local path of a document ingested from
    disk ("" for web sources), so an edge can offer the file itself.
    """

    title: str
    site: str
    kind: str
    date: str
    uri: str
    link: str
    location: str  # "p. 7", "pp. 7-8", "12:03", "" when unknown
    link_at_location: bool = False
    file: str = ""

    @property
    def file_name(self) -> str:
        """The local file's name ("dfe-2018-guidance.pdf"), or ""."""
        return os.path.basename(self.file) if self.file else ""

    @classmethod
    def for_chunk(cls, doc: Document, chunk: Chunk) -> "Citation":
        """Build the citation, including a deep link where the format has one.

        PDFs open at ``#page=N`` where the URL serves the PDF (or the local
        file); videos on an http(s) URL get ``t=N``.
        """
        location = ""
        local = "" if _is_web(doc.uri) else doc.uri
        link = doc.url if _is_web(doc.url) else ("file://" + local if local.startswith("/") else local)
        at_location = False
        if chunk.page_start is not None:
            if chunk.page_end is not None and chunk.page_end != chunk.page_start:
                location = f"pp. {chunk.page_start}-{chunk.page_end}"
            else:
                location = f"p. {chunk.page_start}"
            if link and (serves_file(doc) or not _is_web(link)):
                link = f"{link.split('#')[0]}#page={chunk.page_start}"
                at_location = True
        elif chunk.t_start is not None:
            location = format_timestamp(chunk.t_start)
            if _is_web(doc.url):
                sep = "&" if "?" in doc.url else "?"
                link = f"{doc.url}{sep}t={int(chunk.t_start)}"
                at_location = True
        return cls(
            title=doc.title,
            site=doc.site,
            kind=doc.kind,
            date=doc.date,
            uri=doc.uri,
            link=link,
            location=location,
            link_at_location=at_location,
            file=local,
        )


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its document, citation and scores.

    ``score`` is the score used for ordering (fused; with the reranker, its
    blend with the learned ranker's score); ``dense`` is the cosine
    similarity to the query (``None`` when the passage came only from keyword
    search), ``lexical_rank`` its 1-based rank in the keyword list or ``None``.
    """

    chunk: Chunk
    document: Document
    citation: Citation
    score: float
    dense: float | None = None
    dense_rank: int | None = None
    lexical_rank: int | None = None
    #: The reranker's calibrated probability that the passage answers the
    #: query (None when no reranker read it).
    relevance: float | None = None


@dataclass(frozen=True)
class AnswerSentence:
    """A sentence copied verbatim from passage ``ref`` (1-based).

    ``start``/``end`` locate it in that passage's text (``chunk.text``);
    ``text`` is those characters with layout marks (a bullet, a paragraph
    number) and line breaks dropped.
    """

    text: str
    ref: int
    score: float
    start: int = -1
    end: int = -1
    #: Every passage a written sentence cites (:mod:`search.written`); empty: just ``ref``.
    refs: tuple[int, ...] = ()

    @property
    def cited(self) -> tuple[int, ...]:
        """The passage numbers this sentence cites."""
        return self.refs or (self.ref,)

    @property
    def markers(self) -> str:
        """Its citation markers: "[2]", "[1][3]"."""
        return "".join(f"[{n}]" for n in self.cited)


@dataclass(frozen=True)
class Answer:
    """An extractive answer: sentences with [n] references to ``passages``.

    When ``abstained`` is true the sources do not answer the question;
    ``passages`` then holds the closest passages so the reader can judge.
    """

    question: str
    sentences: tuple[AnswerSentence, ...]
    passages: tuple[Hit, ...]
    abstained: bool
    confidence: float
    also_searched: tuple[str, ...] = ()
    reason: str = ""
    #: Specific words of the question (names, numbers, unknown words) that no
    #: retrieved passage contains: shown with an abstention so the reader sees why.
    missing: tuple[str, ...] = ()
    #: The kind of question (search/intent.py): "what-works", "definition", ...
    intent: str = "factual"
    #: Written by a language model and checked sentence by sentence
    #: (search/written.py); False: every sentence is copied from its passage.
    written: bool = False
    #: One line for the reader about how the answer was made (a written
    #: answer, or why a written one was not used).
    note: str = ""
    #: Written sentences left out, each with why its cited passages do not support it.
    unsupported: tuple[tuple[str, str], ...] = ()
    #: Citations in the model's reply to passages it was not given (removed).
    removed_citations: int = 0
    #: Seconds spent on the model server (0: not asked).
    writer_seconds: float = 0.0

    @property
    def is_list(self) -> bool:
        """Shown as a list of points ("what works" and inspection-finding questions)."""
        return not self.written and self.intent in ("what-works", "needs-improve", "strengths") and len(self.sentences) > 1

    @property
    def text(self) -> str:
        """The answer with [n] markers after each sentence: one paragraph, or "- " points one a line."""
        if self.abstained:
            about = f" (nothing found about: {', '.join(self.missing)})" if self.missing else ""
            return f"The sources do not answer this question clearly{about}. The closest passages are listed below."
        if self.is_list:
            return "\n".join(f"- {s.text} {s.markers}" for s in self.sentences)
        return " ".join(f"{s.text} {s.markers}" for s in self.sentences)


@dataclass(frozen=True)
class Filters:
    """Restrictions applied before ranking (so k results still come back).

    Empty tuples and empty strings mean "no restriction". Dates compare as
    ISO strings (``YYYY`` or ``YYYY-MM-DD``).
    """

    kinds: tuple[str, ...] = ()
    sites: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    date_from: str = ""
    date_to: str = ""

    def is_empty(self) -> bool:
        return not (self.kinds or self.sites or self.tags or self.date_from or self.date_to)

    def describe(self) -> str:
        """The restrictions in words ("kind inspection, from 2020"), for "nothing matched" messages."""
        parts = []
        for label, values in (("kind", self.kinds), ("site", self.sites), ("tag", self.tags)):
            if values:
                parts.append(f"{label} {' or '.join(values)}")
        if self.date_from:
            parts.append(f"from {self.date_from}")
        if self.date_to:
            parts.append(f"to {self.date_to}")
        return ", ".join(parts)


@dataclass(frozen=True)
class StoreInfo:
    """What built a store: recorded on creation, checked on every write."""

    schema_version: int
    model: str
    dim: int
    chunking: str
    documents: int = 0
    chunks: int = 0
    generation: int = 0
    extra: dict = field(default_factory=dict, compare=False)
