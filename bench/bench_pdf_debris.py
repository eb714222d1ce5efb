"""PDF layout debris left in stored text, counted per class over real PDFs.

Every answer sentence is copied from a stored passage, so whatever layout
debris extraction keeps is shown to teachers. This script extracts and
cleans every PDF in ``corpus/`` and ``shared/data/edu_plac`` + ``edu`` the way
ingest does and counts, in the text that would be stored:

* ``footnote markers``: digits glued to the end of a word or closing
  punctuation ("Plus11:", "SMART8", "last resort .8"), not counting short
  capitals codes ("KS3", "Y6") or numbers inside URLs;
* ``number-led sentences``: sentences (as the answer composer splits them)
  that start with a paragraph or footnote number ("69 If the pupil ...",
  "113. There is ...", "2.6 Children ...");
* ``single-letter splits``: a lone letter other than a/I/o before a
  lower-case fragment ("m ay", "t he", "v alue"), the visible kind of kerning
  split; ``joinable splits`` are all splits (any length: "governi ng") that
  :func:`ingest.pdf_layout.join_split_words` would join;
* ``bullet glyphs in text``: bullet characters (and "o" sub-bullets after
  ":" or ";") inside stored text instead of marking a list item;
* ``lost hyphens``: a compound printed with a hyphen elsewhere in the same
  document but stored without it ("lookedafter"), from a line-end hyphen
  dropped (joins that are words, "online" beside "on-line", are spellings);
* ``contents-page entries``: table-of-contents lines with dot leaders
  ("Oversubscription criteria ........ 9").

Dates ("28 February 2022 Deadline for ...", the rows of a timetable) do not
count as number-led sentences.

Only counts; nothing is embedded. ``--save`` writes the counts as JSON (run it
on the old code for a baseline), ``--before`` puts such a baseline beside the
current counts in bench/RESULTS.md, ``--joins`` lists every word join for
review (the false-join rate is counted by hand from that list).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, write_section  # noqa: E402

SHARED = ROOT.parent / "shared"
CLASSES = ("footnote markers", "number-led sentences", "single-letter splits", "joinable splits",
           "bullet glyphs in text", "lost hyphens", "contents-page entries")

_GLUED = re.compile(r"(?<![\w/.])([A-Za-z][\w’'\-]*?[A-Za-z][’'”)]?|[A-Za-z][\w’'\-]*?[A-Za-z]?[’'”)]?\s?[.,;:])(\d{1,3})(?=[\s.,;:)]|$)")
_NUMBER_LED = re.compile(r"^\d{1,3}(?:\.\d{1,3})*\.?\s+[A-Z‘“(\"']")
_MONTH = re.compile(r"^\d{1,2}\s+(January|February|March|April|May|June|July|August|September|October|November|"
                    r"December)\b")
_DOT_LEADER = re.compile(r"\.{4,}\s*\d{1,3}\b")
_SINGLE = re.compile(r"(?<![\w’'.\-/])([b-hj-np-zB-HJ-NP-Z]) ([a-z]{2,})\b")
_GLYPHS = re.compile(r"[•●▪◼■◆◦○➢✓✔\uf0a7\uf0b7\uf0d8\uf076\uf0fc\uf0a8\uf0e0]|(?:^|[:;] )o (?=[A-Za-z])", re.M)
_HYPHENATED = re.compile(r"\b([a-z]{2,})-([a-z]{2,})\b")


def pdf_paths(shared: Path = SHARED) -> list[Path]:
    paths = sorted((ROOT / "corpus").glob("*.pdf"))
    seen = {p.name for p in paths}
    for folder in (shared / "data" / "edu_plac", shared / "data" / "edu"):
        for p in sorted(folder.rglob("*.pdf")) if folder.exists() else []:
            if p.name not in seen:  # the corpus PDFs are copies of edu_plac ones
                seen.add(p.name)
                paths.append(p)
    return paths


def _glued_markers(text: str) -> int:
    n = 0
    for m in _GLUED.finditer(text):
        word = m.group(1).rstrip(" .,;:’'”)")
        if re.fullmatch(r"[A-Z]{1,2}", word):  # KS3, Y6, A2: codes, not markers
            continue
        n += 1
    return n


def count_debris(text: str) -> Counter:
    """Debris counts in one document's stored text (see the module docstring)."""
    from ingest.pdf_layout import join_split_words, model_words, word_counts
    from search.text import sentence_spans

    c: Counter = Counter()
    c["footnote markers"] = _glued_markers(text)
    c["number-led sentences"] = sum(1 for a, b in sentence_spans(text)
                                    if _NUMBER_LED.match(text[a:b]) and not _MONTH.match(text[a:b]))
    c["single-letter splits"] = len(_SINGLE.findall(text))
    c["joinable splits"] = len(join_split_words(text, word_counts([text]))[1])
    c["bullet glyphs in text"] = len(_GLYPHS.findall(text))
    # "online" beside "on-line" is a spelling; "lookedafter" is not a word.
    hyphenated = {a + b for a, b in _HYPHENATED.findall(text.lower())} - model_words()
    c["lost hyphens"] = sum(1 for w in re.findall(r"[a-z]+", text.lower()) if w in hyphenated)
    c["contents-page entries"] = len(_DOT_LEADER.findall(text))
    return c


def measure(paths: list[Path], joins_out=None) -> dict:
    from ingest.clean import clean
    from ingest.extract import extract_file
    from ingest.pdf_layout import join_split_words, word_counts
    from ingest.segments import assemble
    from search.errors import ExtractionError

    totals: Counter = Counter()
    per_file = {}
    kinds: Counter = Counter()
    for p in paths:
        try:
            ex = clean(extract_file(p))
        except ExtractionError as exc:
            print(f"{p.name}: {exc}", file=sys.stderr)
            continue
        text, _ = assemble(ex.segments)
        counts = count_debris(text)
        totals.update(counts)
        kinds.update(getattr(s, "kind", "") or "paragraph" for s in ex.segments)
        per_file[p.name] = {"title": ex.meta.get("title", ""), **counts}
        if joins_out is not None:
            for a, b in join_split_words(text, word_counts([text]))[1]:
                print(f"{p.name}\t{a} {b}", file=joins_out)
    return {"files": len(per_file), "totals": {k: totals[k] for k in CLASSES}, "kinds": dict(kinds),
            "per_file": per_file}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--save", type=Path, help="write the counts as JSON here")
    ap.add_argument("--before", type=Path, help="a --save file from the old code, shown beside the counts")
    ap.add_argument("--before-label", default="before", help="what the --before column is (e.g. a commit)")
    ap.add_argument("--joins", type=Path, help="list every word join here, for review")
    ap.add_argument("--shared", type=Path, default=SHARED,
                    help="the shared/ folder (default: beside this checkout)")
    ap.add_argument("--note", default="", help="a sentence added to the section (e.g. the hand review of --joins)")
    ap.add_argument("--no-write", action="store_true", help="do not touch bench/RESULTS.md")
    args = ap.parse_args()
    paths = pdf_paths(args.shared)
    joins_out = args.joins.open("w") if args.joins else None
    try:
        result = measure(paths, joins_out)
    finally:
        if joins_out:
            joins_out.close()
    if args.save:
        args.save.write_text(json.dumps(result, indent=1, ensure_ascii=False))
    before = json.loads(args.before.read_text()) if args.before else None
    rows = ["| debris class | " + (f"{args.before_label} | " if before else "") + "now |",
            "|---|" + ("---|" if before else "") + "---|"]
    for k in CLASSES:
        old = f"{before['totals'].get(k, '-')} | " if before else ""
        rows.append(f"| {k} | {old}{result['totals'][k]} |")
    print("\n".join(rows))
    print("segment kinds:", result["kinds"])
    if args.no_write:
        return
    body = (f"{machine_line()}\n\nData: {result['files']} PDFs (`corpus/` and `shared/data/edu_plac` + `edu`), "
            "extracted and cleaned as ingest does; occurrences in the stored text (see bench/bench_pdf_debris.py "
            "for what each class counts).\n\n" + "\n".join(rows) + "\n\nSegments by kind now: "
            + ", ".join(f"{k} {v}" for k, v in sorted(result["kinds"].items())) + ".\n"
            + (f"\n{args.note.strip()}\n" if args.note.strip() else ""))
    write_section(ROOT / "bench" / "RESULTS.md", "PDF layout debris", body)


if __name__ == "__main__":
    main()
