#!/usr/bin/env python3
"""Self-check for the blind question sets, run on the documents only.

It never imports or runs equisearch (nothing from search/, ingest/ or ui/):
it reads the source documents itself (pypdf for PDFs, plain text otherwise)
and checks the question files against them.

For every answerable question:
  * the source file exists;
  * every answer span occurs in the source's extracted text, after folding
    (Unicode NFKC, typographic quotes and dashes to ASCII, whitespace
    collapsed, case-insensitive);
  * for PDFs, the span occurs inside a single page (so it does not cross a
    page break);
  * spans are 3-12 words long and contain no bullet glyphs.
If `pdftotext` (poppler-utils) is on PATH, spans are also checked against
its output, and any disagreement between the two extractors is reported.

For every unanswerable question, the whole store is searched for
"suspicious overlap": passages where the question's distinctive words
(names, numbers, rarer terms) cluster together. These are printed for a
human to read; they are warnings, not failures.

Usage:
  python tests/data/blind/check_spans.py [--data-root /work/shared/data]
        [--corpus-root <repo>/corpus] [files ...]
Exit status 1 if any answerable span cannot be verified.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]

KINDS = {
    "what-works", "factual", "definition", "needs-improve", "strengths",
    "when", "how-long", "who", "unanswerable",
}

# Which folders make up each store (relative to the data root, except
# "corpus", which is the starter corpus in the repository).
STORES = {
    "starter.jsonl": ["corpus"],
    "plac.jsonl": ["corpus", "edu_plac"],
    "edu.jsonl": ["corpus", "edu"],
}

TEXT_EXT = {".txt", ".md", ".gs", ".rst", ".html", ".htm", ".csv"}

FOLD = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u2032": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"',
    "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-",
    "\u2014": "-", "\u2015": "-", "\u2212": "-",
    "\u00a0": " ", "\u200b": "",
}
FOLD_TABLE = str.maketrans(FOLD)
BULLETS = set("\u2022\u25cf\u25aa\u25e6\u2023\u2043\u00b7\uf0b7\uf0a7")


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(FOLD_TABLE)
    text = re.sub(r"\s+", " ", text)
    return text.strip().lower()


def resolve(source: str, data_root: Path, corpus_root: Path) -> Path:
    if source.startswith("corpus/"):
        return corpus_root / source[len("corpus/"):]
    return data_root / source


@lru_cache(maxsize=None)
def pypdf_pages(path: str) -> tuple[str, ...]:
    from pypdf import PdfReader  # only dependency beyond the stdlib

    reader = PdfReader(path)
    return tuple(fold(p.extract_text() or "") for p in reader.pages)


@lru_cache(maxsize=None)
def pdftotext_pages(path: str) -> tuple[str, ...] | None:
    exe = shutil.which("pdftotext")
    if not exe:
        return None
    out = subprocess.run([exe, "-enc", "UTF-8", path, "-"],
                         capture_output=True, check=False).stdout
    return tuple(fold(p) for p in out.decode("utf-8", "replace").split("\f"))


def strip_html(raw: str) -> str:
    raw = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", raw)
    raw = re.sub(r"(?s)<[^>]+>", " ", raw)
    import html as _html
    return _html.unescape(raw)


@lru_cache(maxsize=None)
def text_pages(path: str) -> tuple[str, ...]:
    raw = Path(path).read_text(encoding="utf-8", errors="replace")
    if path.lower().endswith((".html", ".htm")):
        raw = strip_html(raw)
    return (fold(raw),)


def pages_of(path: Path) -> tuple[str, ...]:
    if path.suffix.lower() == ".pdf":
        return pypdf_pages(str(path))
    return text_pages(str(path))


def store_files(name: str, data_root: Path, corpus_root: Path) -> list[Path]:
    files: list[Path] = []
    seen: set[str] = set()  # the starter PDFs are also copied in edu_plac
    for folder in STORES.get(name, []):
        base = corpus_root if folder == "corpus" else data_root / folder
        for p in sorted(base.rglob("*")):
            if p.is_file() and (p.suffix.lower() == ".pdf"
                                or p.suffix.lower() in TEXT_EXT):
                if p.name in ("manifest.json", "MANIFEST.csv") or p.name in seen:
                    continue
                seen.add(p.name)
                files.append(p)
    return files


STOP = set("""
a an the and or of to in on for with by at from as is are was were be been being
it its this that these those what which who whom whose when where why how do does
did doing can could should would will shall may might must have has had having
not no yes any all some our we us you your i me my they them their there here
about into over under than then so if but also just still get got need needs
much many more most one two per each every other same such only own very
school schools pupil pupils child children kids kid student students teacher
teachers say says said tell want wants know anyone ok did last latest year
""".split())

TOKEN = re.compile(r"[a-z0-9\u00a3%]+")


def tokens(text: str) -> list[str]:
    return TOKEN.findall(fold(text))


def distinctive_terms(question: str) -> list[str]:
    out: list[str] = []
    for t in tokens(question):
        if t in STOP or (len(t) < 3 and not any(c.isdigit() for c in t)):
            continue
        if t not in out:
            out.append(t)
    return out


@lru_cache(maxsize=None)
def file_tokens(path: str) -> frozenset[str]:
    return frozenset(t for page in pages_of(Path(path)) for t in tokens(page))


def overlap_report(question: str, files: list[Path], window: int = 60,
                   top: int = 3) -> list[tuple[float, str, str]]:
    """Passages where the question's terms cluster, rarer terms required.

    A term is "rare" if it occurs in at most 10% of the store's files (names
    of authorities, numbers, unusual words). A window is reported when it
    holds every rare term of the question and at least 60% of all its terms.
    """
    terms = distinctive_terms(question)
    if not terms:
        return []
    sets = {str(f): file_tokens(str(f)) for f in files}
    limit = max(1, len(files) // 10)
    rare = [t for t in terms if sum(t in s for s in sets.values()) <= limit]
    hits = []
    for path in files:
        fs = sets[str(path)]
        if not all(t in fs for t in rare):
            continue
        if sum(t in fs for t in terms) < 0.6 * len(terms):
            continue
        for page in pages_of(path):
            toks = tokens(page)
            best, best_i = 0, 0
            for i in range(0, max(1, len(toks) - window + 1), 15):
                chunk = set(toks[i:i + window])
                if not all(t in chunk for t in rare):
                    continue
                score = sum(1 for t in terms if t in chunk)
                if score > best:
                    best, best_i = score, i
            frac = best / len(terms)
            if best and frac >= 0.6:
                hits.append((frac, path.name, " ".join(toks[best_i:best_i + window])))
    hits.sort(key=lambda h: -h[0])
    return hits[:top]


def check_file(qfile: Path, data_root: Path, corpus_root: Path,
               show_overlap: bool) -> int:
    failures = 0
    name = qfile.name
    files = store_files(name, data_root, corpus_root)
    ids = set()
    counts: dict[str, int] = {}
    for n, line in enumerate(qfile.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        q = json.loads(line)
        qid = q.get("id", f"line{n}")
        for key in ("id", "question", "answers", "source", "kind", "nuggets"):
            if key not in q:
                print(f"FAIL {name}:{qid}: missing field {key}")
                failures += 1
        if qid in ids:
            print(f"FAIL {name}:{qid}: duplicate id")
            failures += 1
        ids.add(qid)
        kind = q.get("kind")
        counts[kind] = counts.get(kind, 0) + 1
        if kind not in KINDS:
            print(f"FAIL {name}:{qid}: unknown kind {kind!r}")
            failures += 1
        if kind == "unanswerable":
            if q.get("answers"):
                print(f"FAIL {name}:{qid}: unanswerable with answers")
                failures += 1
            if show_overlap:
                for frac, fname, snip in overlap_report(q["question"], files):
                    print(f"WARN {name}:{qid}: overlap {frac:.0%} in {fname}: "
                          f"...{snip[:300]}...")
            continue
        answers = q.get("answers") or []
        if not 1 <= len(answers) <= 4:
            print(f"FAIL {name}:{qid}: needs 1-4 answer spans")
            failures += 1
        src = resolve(q["source"], data_root, corpus_root)
        if not src.is_file():
            print(f"FAIL {name}:{qid}: source not found {src}")
            failures += 1
            continue
        pages = pages_of(src)
        alt = pdftotext_pages(str(src)) if src.suffix.lower() == ".pdf" else None
        for span in answers:
            nwords = len(span.split())
            if not 3 <= nwords <= 12:
                print(f"FAIL {name}:{qid}: span has {nwords} words: {span!r}")
                failures += 1
            if any(c in BULLETS for c in span) or "\n" in span:
                print(f"FAIL {name}:{qid}: bullet or newline in {span!r}")
                failures += 1
            s = fold(span)
            whole = " ".join(pages)
            on_page = any(s in p for p in pages)
            if not on_page:
                where = "crosses a page break" if s in whole else "not found"
                print(f"FAIL {name}:{qid}: span {where} (pypdf/text): {span!r}")
                failures += 1
            if alt is not None:
                alt_ok = any(s in p for p in alt)
                if not alt_ok:
                    print(f"FAIL {name}:{qid}: span not on one page in "
                          f"pdftotext output: {span!r}")
                    failures += 1
    total = sum(counts.values())
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"{name}: {total} questions ({summary}); {failures} failure(s)")
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--data-root", type=Path,
                    default=Path(os.environ.get("BLIND_DATA_ROOT",
                                                "/work/shared/data")))
    ap.add_argument("--corpus-root", type=Path, default=REPO / "corpus")
    ap.add_argument("--no-overlap", action="store_true",
                    help="skip the (slower) overlap search for unanswerables")
    args = ap.parse_args(argv)
    files = args.files or [HERE / n for n in STORES if (HERE / n).exists()]
    failures = 0
    for f in files:
        failures += check_file(f, args.data_root, args.corpus_root,
                               not args.no_overlap)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
