"""Record types shared by every layer.

All records are frozen dataclasses: they are values read from or written to the
store, never mutated in place. Citations travel with chunks (page span, time
span, URL, char offsets), so nothing has to be reconstructed at answer time.
"""
from __future__ import annotations

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


@dataclass(frozen=True)
class Citation:
    """How to point a reader at a passage: where it is and a link to open it."""

    title: str
    site: str
    kind: str
    date: str
    uri: str
    link: str
    location: str  # "p. 7", "pp. 7-8", "12:03", "" when unknown

    @classmethod
    def for_chunk(cls, doc: Document, chunk: Chunk) -> "Citation":
        """Build the citation, including a deep link where the format has one.

        PDFs open at ``#page=N``; YouTube/Vimeo style video URLs get ``t=N``.
        """
        location = ""
        link = doc.url or doc.uri
        if chunk.page_start is not None:
            if chunk.page_end is not None and chunk.page_end != chunk.page_start:
                location = f"pp. {chunk.page_start}-{chunk.page_end}"
            else:
                location = f"p. {chunk.page_start}"
            if link and not link.startswith(("http://", "https://")):
                link = "file://" + link if link.startswith("/") else link
            if link:
                link = f"{link.split('#')[0]}#page={chunk.page_start}"
        elif chunk.t_start is not None:
            location = format_timestamp(chunk.t_start)
            if doc.url.startswith(("http://", "https://")):
                sep = "&" if "?" in doc.url else "?"
                link = f"{doc.url}{sep}t={int(chunk.t_start)}"
        if not link.startswith(("http://", "https://", "file://")) and link.startswith("/"):
            link = "file://" + link
        return cls(
            title=doc.title,
            site=doc.site,
            kind=doc.kind,
            date=doc.date,
            uri=doc.uri,
            link=link,
            location=location,
        )


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its document, citation and scores.

    ``score`` is the fused rank score used for ordering; ``dense`` is the cosine
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


@dataclass(frozen=True)
class AnswerSentence:
    """A sentence copied verbatim from passage ``ref`` (1-based)."""

    text: str
    ref: int
    score: float


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

    @property
    def text(self) -> str:
        """The answer as one paragraph with [n] markers after each sentence."""
        if self.abstained:
            about = f" (nothing found about: {', '.join(self.missing)})" if self.missing else ""
            return f"The sources do not answer this question clearly{about}. The closest passages are listed below."
        return " ".join(f"{s.text} [{s.ref}]" for s in self.sentences)


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
