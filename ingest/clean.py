"""Removing page furniture and repetition from extracted text.

Text scraped from the web (or handed over already extracted, like the starter
corpus) still carries the page around the article: cookie notices, site
banners, comment forms, share widgets, newsletter boxes, related-post lists,
legal disclaimers, calls to action. None of it may come back as an answer, so
it is removed here, by patterns that describe each kind of furniture and by
structure (a run of "title / date" pairs is a list of other posts; a heading
directly above removed furniture goes with it). Rules are conservative: a line
is only dropped when it is short and matches, a paragraph only when it is
mostly furniture, and spoken text (transcripts) is never dropped for sounding
like a call to action.

Also: a page that repeats itself is kept once (a second copy of a run of
paragraphs is dropped; single repeated paragraphs are writing and stay), and
forum threads are split into one segment per post, with the author as
speaker and in the text ("christineryan1: ...").
"""
from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict

from .segments import Extracted, Segment

log = logging.getLogger(__name__)

# "Read more"-type labels that introduce a link to another article, in the
# languages of the pages ingest meets (English, German, French, Spanish,
# Italian, Portuguese, Dutch, Polish). Newspapers put "<label>: <linked
# headline>" between the paragraphs of an article ("Lesen Sie auch: ...",
# "Lire aussi : ...", "Dowiedz się więcej: ..."); the label alone heads a list
# of such links.
_READ_MORE_LABELS = (
    r"read more|read also|see more|see also|"
    r"lesen sie (auch|mehr|weiter)|mehr zum thema|weiterlesen|auch interessant|"
    r"(à )?lire aussi|lire la suite|voir aussi|"
    r"leer más|lea también|lee también|ver también|te puede interesar|"
    r"leggi anche|leia também|leia mais|saiba mais|lees ook|lees meer|lees verder|"
    r"czytaj (też|także|również|więcej)|zobacz (też|także|również)|dowiedz się więcej"
)

# Lines that are furniture wherever they appear (only when short).
_LINE_PATTERNS = [
    # cookie and consent notices
    r"\b(this|our) (web)?site uses cookies\b", r"\bwe use cookies\b", r"\baccept (all )?cookies\b",
    r"\bcookie (settings|policy|preferences|consent)\b", r"\bby continuing to (use|browse)\b",
    r"\b(reject|manage) (all |optional )?cookies\b",
    # site banners and notices
    r"^(hi|hello|welcome),? guest\b", r"\bwelcome to the [\w .'-]{2,40} community\b", r"^dismiss( notice)?$",
    r"\bdon'?t forget to look at the how to guide\b", r"\bconnect with like-minded professionals\b",
    r"^(skip to (main )?content|back to top|menu|search( this site)?|log ?in|sign ?in|register)$",
    # comment forms
    r"^leave a (reply|comment)\b", r"\byou can use these (html )?tags\b", r"\byour email address will not be published\b",
    r"\brequired fields are marked\b", r"^(post|submit) (a )?comment$", r"^cancel reply$", r"^\d* ?comments?:?$",
    r"^notify me of (follow-up comments|new posts)\b", r"^log in to (reply|comment)\b", r"^reply$",
    # share widgets
    r"^share (this|this page|this post|this article|on [a-z]+)\b", r"^share:?$", r"\bclick to (share|email|print)\b",
    r"^(tweet|pin it|email|print|print this page)$", r"^like this:?$", r"^like loading", r"^(facebook|twitter|linkedin|whatsapp|email)( \| .*)?$",
    # newsletter lines
    r"^(sign up|subscribe) (to|for) (our|the) [\w ]{0,30}(newsletter|e-?newsletter|mailing list|updates)\b",
    # related posts and navigation
    r"^(related (posts|articles|stories|content|news)|you (may|might) also (like|be interested in)|recent posts|popular posts|"
    r"more (from|in) [\w ]{1,30}|next (post|article)|previous (post|article)|filed under|categories:|tags:)\b",
    r"^(older|newer) posts?$", r"^(read|learn|find out) more\.?$", r"^related:?$",
    # a teaser label with the linked title on the same line ("Related: ...", "Read more: ...")
    rf"^\[?(related( (posts?|articles?|stories|story|content|news|reading|coverage))?|{_READ_MORE_LABELS})\s*:\s*\S",
    rf"^({_READ_MORE_LABELS})\s*[.:…]*$",
    r"^(more|also|don'?t miss|most read|trending( now)?)\s*:?$",
    # social follow and reader prompts
    r"\bfollow (us|me|him|her|them)( on (twitter|x|facebook|instagram|linkedin|youtube|tiktok|threads|bluesky)\b| @\w)",
    r"^follow [\w.@&' -]{1,40}? on (twitter|x|facebook|instagram|linkedin|youtube|tiktok|threads|bluesky)\b",
    r"^like this (story|article|post|page)\?", r"\bshare (it|this) with (a friend|your friends)\b",
    r"^tell us what you think\b",
    # reading-time badges
    r"^(estimated )?(reading|read) time:?\s*\d+\s*min(ute)?s?\.?$", r"^\d+\s*min(ute)?s?\s+read$",
    # boilerplate status lines
    r"^\S+ likes? this\.?$", r"^all rights reserved\.?$", r"^©", r"^copyright (©|\(c\))? ?\d{4}",
]
_LINE_RE = re.compile("|".join(f"(?:{p})" for p in _LINE_PATTERNS), re.I)

# Labels that head a list of links to other pages ("Related:", "Don't miss",
# "Read more: <title>"); the short items right after them go with them.
_LIST_HEAD_RE = re.compile(
    rf"^\[?(related( (posts?|articles?|stories|story|content|news|reading|coverage))?|{_READ_MORE_LABELS}|"
    r"more|also|don'?t miss|most read|trending( now)?|you (may|might) also (like|be interested in)|recent posts|"
    r"popular posts)\s*(:|$)",
    re.I,
)
_BULLET = re.compile(r"^\s*[-•*·▪]\s+")

# Short calls to action that carry no information (never applied to transcripts).
_CTA_RE = re.compile(
    r"\b(click here|watch (the recording|the video|it|this) (here|now|in full)|watch the recording here|"
    r"select a video|select play|explore this resource|find out more|book (your|a) (place|places|space)|"
    r"view the series|download (the|this) (resource|report|pdf)|read the full (story|article)|subscribe here|"
    # donation appeals (charity and publisher banners)
    r"donate (now|today)|make a donation|help us continue)\b",
    re.I,
)

# Signals of legal/terms boilerplate; two in one paragraph (or one in a short
# paragraph) make it a disclaimer.
_DISCLAIMER_SIGNALS = [
    r"for general information purposes only", r"no representation or warranty", r"(entirely )?at your own risk",
    r"terms (and|&) conditions", r"do(es)? not necessarily reflect", r"not (been )?commissioned by",
    r"accepts? no (responsibility|liability)", r"the views expressed", r"(is|are) not responsible for",
    r"professional or specialist advice", r"exclude any liability", r"all rights reserved",
    r"reliance you place", r"privacy (policy|notice)",
]
_DISCLAIMER_RE = [re.compile(p, re.I) for p in _DISCLAIMER_SIGNALS]

_NEWSLETTER_RE = re.compile(r"\b(sign up|subscribe|register|join)\b.{0,80}\b(newsletters?|e-?newsletters?|mailing list|"
                            r"updates|bulletin|membership)\b|\b(newsletters?|e-?newsletters?)\b.{0,60}\b(sign up|subscribe)\b",
                            re.I | re.S)

_MONTHS = r"(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t(ember)?)?|oct(ober)?|nov(ember)?|dec(ember)?)"
_DATE_ONLY = re.compile(
    rf"^\s*((\d{{1,2}}(st|nd|rd|th)? {_MONTHS},? \d{{4}})|({_MONTHS} \d{{1,2}}(st|nd|rd|th)?,? \d{{4}})|"
    rf"(\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}})|(\d{{4}}-\d{{2}}-\d{{2}}))\s*$",
    re.I,
)
_PUBLISHED = re.compile(r"\bpublished:?\s*(\d{1,2})/(\d{1,2})/(\d{4})", re.I)
# "Published 01/01/2017. Last updated ..." / "Posted on 3 May 2022": metadata, not text.
_DATELINE = re.compile(r"^(published|posted( on)?|last updated|updated)\b:?\s*\S*\d.{0,200}$", re.I)

# Forum thread structure: "3. christineryan1" then "christineryan1 New commenter ...".
_POST_HEADER = re.compile(r"^\s*\d{1,4}\.\s+(\S{2,40})\s*$")


def _words(text: str) -> int:
    return len(text.split())


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w ]+", " ", text.lower()).split())


def is_furniture_line(line: str) -> bool:
    """A short line that matches a furniture pattern."""
    s = line.strip().lstrip("•-*·0123456789. ").strip()
    return bool(s) and _words(s) <= 40 and bool(_LINE_RE.search(s))


def is_disclaimer(paragraph: str) -> bool:
    signals = sum(1 for r in _DISCLAIMER_RE if r.search(paragraph))
    return signals >= 2 or (signals == 1 and _words(paragraph) < 40)


def is_newsletter_box(paragraph: str) -> bool:
    return _words(paragraph) <= 60 and bool(_NEWSLETTER_RE.search(paragraph))


def _is_heading_like(text: str) -> bool:
    t = text.strip()
    return 0 < _words(t) <= 5 and not t.endswith((".", "?", "!", ":")) and "\n" not in t


def clean(extracted: Extracted) -> Extracted:
    """A copy of ``extracted`` without furniture, repeats, and with forum posts split."""
    meta = dict(extracted.meta)
    segments = list(extracted.segments)
    forum = split_forum_posts(segments)
    if forum is not None:
        segments = forum
        meta["kind"] = "forum"
    segments = _drop_furniture_lines(segments)
    segments = _drop_related_lists(segments)
    segments = _dedupe(segments)
    m = next((_PUBLISHED.search(x.text) for x in extracted.segments[:6] if _PUBLISHED.search(x.text)), None)
    if m and not meta.get("date"):
        meta["date"] = f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}"
    return Extracted(segments, meta)


def _is_furniture_paragraph(text: str, transcript: bool) -> bool:
    if transcript:
        return False
    if is_disclaimer(text) or is_newsletter_box(text) or _DATELINE.match(text.strip()):
        return True
    return _words(text) < 25 and bool(_CTA_RE.search(text))


def _drop_furniture_lines(segments: list[Segment]) -> list[Segment]:
    """Drop furniture lines (and paragraphs, which arrive as lines of a post).

    A heading-like segment directly above a segment that was entirely
    furniture ("Disclaimer", "Associate Membership", "Video") goes with it;
    the linked headlines right below a list label ("Related:", "Don't
    miss", "Read more: <title>") go with the label.
    """
    kept_segments: list[Segment | None] = []
    emptied: list[bool] = []
    in_list = ""  # "label": any linked headline follows; "teaser": only bullets do
    for seg in segments:
        if in_list and _is_link_item(seg.text, bullets_only=in_list == "teaser") and not seg.transcript:
            kept_segments.append(None)
            emptied.append(True)
            continue
        kept = [ln for ln in seg.text.split("\n")
                if not (is_furniture_line(ln) or _is_furniture_paragraph(ln, seg.transcript))]
        text = "\n".join(kept).strip()
        kept_segments.append(seg.with_text(text) if text else None)
        emptied.append(not text and bool(seg.text.strip()))
        label = _BULLET.sub("", seg.text.strip())
        head = _LIST_HEAD_RE.match(label) if not text else None
        in_list = "" if head is None else ("label" if head.end() >= len(label) else "teaser")
    for i in range(1, len(segments)):
        prev = kept_segments[i - 1]
        if emptied[i] and prev is not None and _is_heading_like(prev.text) and not prev.transcript:
            kept_segments[i - 1] = None
    return [s for s in kept_segments if s is not None]


def _is_link_item(text: str, bullets_only: bool = False) -> bool:
    """A list item that reads like a linked headline: short, one line, not a sentence."""
    t = text.strip()
    if bullets_only and not _BULLET.match(t):
        return False
    return "\n" not in t and 0 < _words(t) <= 20 and not t.endswith(".")


def _drop_related_lists(segments: list[Segment]) -> list[Segment]:
    """Drop "title / date" pairs when they form a list (2+ pairs, or 1 at the very end)."""
    pairs = []
    for i in range(len(segments) - 1):
        title, date = segments[i].text.strip(), segments[i + 1].text.strip()
        if _DATE_ONLY.match(date) and 2 <= _words(title) <= 25 and not title.endswith((".", "?", "!")):
            pairs.append(i)
    if not pairs:
        return segments
    at_end = pairs[-1] + 2 >= len(segments) - 2
    if len(pairs) < 2 and not at_end:
        return segments
    dropped = {j for i in pairs for j in (i, i + 1)}
    return [s for k, s in enumerate(segments) if k not in dropped]


#: A run of repeated paragraphs is a second copy of the page when it holds at
#: least this share of the document's words. Copies measured: seed 002 (the
#: whole page twice) 0.5, a news page printed three times 0.34; repeated
#: structure that is content (a meal plan's three near-identical menus on
#: the Article Extraction Benchmark) up to 0.2.
COPY_SHARE = 0.25


def _dedupe(segments: list[Segment]) -> list[Segment]:
    """Drop the second copy of a page that repeats itself.

    A second copy is a run of 2+ consecutive paragraphs, each seen before,
    holding at least :data:`COPY_SHARE` of the words (not necessarily in the
    first copy's order: templates drop or add separators and captions).
    Paragraphs that recur on their own, or in short runs, are writing and
    stay: an interview's standing questions, the same bullet under two
    products, a meal plan's "Pre-workout meal", a table header, a refrain in
    a transcript (on the Article Extraction Benchmark every such repeat was
    in the reference text).
    """
    seen: set[str] = set()
    repeated = []
    for seg in segments:
        key = _norm(seg.text)
        repeated.append(bool(key) and key in seen and not seg.transcript)
        seen.add(key)
    total = sum(_words(s.text) for s in segments) or 1
    dropped: set[int] = set()
    i = 0
    while i < len(segments):
        if not repeated[i]:
            i += 1
            continue
        j = i + 1
        while j < len(segments) and repeated[j]:
            j += 1
        words = sum(_words(segments[k].text) for k in range(i, j))
        if j - i >= 2 and words >= COPY_SHARE * total:
            dropped.update(range(i, j))
        i = j
    return [s for k, s in enumerate(segments) if k not in dropped]


def split_forum_posts(segments: list[Segment]) -> list[Segment] | None:
    """One segment per post when the text is a forum thread, else None.

    A thread is recognised by 2+ numbered post headers ("3. christineryan1")
    each followed by a line starting with the same user name (the badge line,
    "christineryan1 New commenter ..."). Posts keep their author as
    ``speaker`` and in the text ("christineryan1: ..."); badge lines, "X likes
    this." lines and empty posts go.
    """
    lines = [ln.strip() for seg in segments for ln in seg.text.split("\n")]
    lines = [ln for ln in lines if ln]
    headers = []
    for i, ln in enumerate(lines[:-1]):
        m = _POST_HEADER.match(ln)
        if m and lines[i + 1].startswith(m.group(1) + " "):
            headers.append((i, m.group(1)))
    if len(headers) < 2:
        return None
    out: list[Segment] = [Segment(ln) for ln in lines[: headers[0][0]]]
    for n, (start, user) in enumerate(headers):
        end = headers[n + 1][0] if n + 1 < len(headers) else len(lines)
        # "christineryan1 likes this." is a reaction, not words of the post
        # (extraction may have glued it to the end of the post's last line).
        body = [re.sub(r"\s*\b\S+ likes this\.?$", "", ln) for ln in lines[start + 2 : end]]
        body = [ln for ln in body if ln]
        # Trailing page furniture after the last post stays as normal lines.
        tail: list[str] = []
        if n + 1 == len(headers):
            while body and (is_furniture_line(body[-1]) or _words(body[-1]) <= 3):
                tail.insert(0, body.pop())
        if body:
            out.append(Segment(f"{user}: " + "\n".join(body), speaker=user))
        out += [Segment(t) for t in tail]
    return out


def remove_cross_document_boilerplate(docs: list[Extracted], min_docs: int = 3) -> list[Extracted]:
    """Drop short paragraphs that recur in ``min_docs``+ documents of one site.

    Site navigation and footers repeat across a site's pages; real content
    rarely does. Only paragraphs under 40 words count, and only within one
    ``meta["site"]`` (two sites quoting the same sentence keep it).
    """
    by_site: dict[str, Counter] = defaultdict(Counter)
    for d in docs:
        site = str(d.meta.get("site") or "")
        if site:
            by_site[site].update({_norm(s.text) for s in d.segments if _words(s.text) < 40})
    out = []
    for d in docs:
        site = str(d.meta.get("site") or "")
        common = {k for k, c in by_site.get(site, Counter()).items() if c >= min_docs} if site else set()
        segs = [s for s in d.segments if _norm(s.text) not in common or s.transcript]
        out.append(Extracted(segs, dict(d.meta)))
    return out
