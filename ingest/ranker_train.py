"""Train the learned ranker (search/ltr.py) on question files with known answers.

Usage::

    python -m ingest.ranker_train [--stores DIR] [--out search/data/ranker.json] [--cv]

For each question of the training files, the store it is about is searched
as ``equisearch search`` does (first stage only), the fused top
``ranker_candidates`` passages are turned into feature rows
(:func:`search.ltr.all_features`, the code search runs) and labelled 1 when a
passage holds one of the question's answer strings (the match
``equisearch eval`` uses). A linear model is fitted by listwise softmax
cross-entropy (:func:`search.ltr.fit_listwise`) and written as JSON.

Training files (``TRAINING``): ``shared/dev-eval`` (seeds, plac), the
project's own tests/data/starter_questions, edu_questions,
teacher_questions and ranker_train_questions. The blind sets in
tests/data/blind/ are never read. Stores: as bench/bench_answers.py builds
them (A = corpus/, B = A + shared/data/edu_plac, C = A + shared/data/edu;
``--build`` builds missing ones, ~8 min on 2 cores).

``--cv`` also reports, per training file, recall@5 and MRR@5 of the first
stage and of a ranker fitted on the other files only: the honest estimate of
what the ranker does on questions it has not seen. Deterministic: the same
stores and files give the same weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATA = ROOT / "tests" / "data"
OUT = ROOT / "search" / "data" / "ranker.json"

#: (store, question file); "auto": the store is chosen per question from its ``source``.
TRAINING = [
    ("A", SHARED / "dev-eval" / "seeds.jsonl"),
    ("B", SHARED / "dev-eval" / "plac.jsonl"),
    ("A", DATA / "starter_questions.jsonl"),
    ("C", DATA / "edu_questions.jsonl"),
    ("C", DATA / "teacher_questions.jsonl"),
    ("auto", DATA / "ranker_train_questions.jsonl"),
]


def store_of(source: str) -> str:
    """The bench store holding a question's source document."""
    if source.startswith("edu_plac/"):
        return "B"
    if source.startswith("edu/"):
        return "C"
    return "A"


def collect(engines: dict, files) -> dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Per file, per answerable question: (feature rows, labels, first-stage order)."""
    from search.evaluate import load_eval, match_text

    out: dict[str, list] = {}
    for store, path in files:
        if not path.is_file():
            print(f"skipped {path}: not found", file=sys.stderr)
            continue
        rows = []
        for item in load_eval(path):
            if not item.answerable:
                continue
            name = store_of(item.source) if store == "auto" else store
            head, chunks, x = engines[name].ranking_candidates(item.question)
            wanted = [match_text(a) for a in item.answers]
            y = np.asarray([float(any(w in match_text(chunks[c.chunk_id].text) for w in wanted)) for c in head])
            rows.append((x, y))
        out[path.name] = rows
    return out


def longest_question() -> int:
    """Words in the longest question of the training files."""
    from search.evaluate import load_eval
    from search.text import words

    return max(len(words(item.question)) for _, path in TRAINING if path.is_file() for item in load_eval(path))


def ranks_of(scores: np.ndarray, y: np.ndarray) -> int | None:
    """1-based rank of the first positive under ``scores`` (None: no positive)."""
    from search.ltr import order

    for r, i in enumerate(order(scores), start=1):
        if y[i] > 0:
            return r
    return None


def figures(groups, weights: dict | None, k: int = 5) -> dict:
    """recall@k and MRR@k over ``groups`` ranked by ``weights`` (None: first-stage order)."""
    hits, rr = 0, 0.0
    for x, y in groups:
        if weights is None:
            scores = -np.arange(len(y), dtype=np.float32)
        else:
            scores = ((x - np.asarray(weights["mean"])) / np.asarray(weights["scale"])) @ np.asarray(weights["weights"])
        r = ranks_of(scores, y)
        if r is not None and r <= k:
            hits += 1
            rr += 1 / r
    n = len(groups)
    return {"n": n, "recall@5": round(hits / n, 3) if n else None, "mrr@5": round(rr / n, 3) if n else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", default="/work/benchcache/answers", help="folder of the stores A, B, C")
    ap.add_argument("--build", action="store_true", help="build missing stores first (bench/bench_answers.py)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--l2", type=float, default=0.01, help="L2 penalty on the standardised weights")
    ap.add_argument("--cv", action="store_true", help="also report leave-one-file-out figures")
    ap.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from search.api import Engine
    from search.ltr import FEATURES, RANKER_FORMAT, fit_listwise
    from search.settings import Settings

    stores = Path(args.stores)
    if args.build:
        from bench.bench_answers import build

        for name in "ABC":
            build(stores, name)
    settings = Settings.from_env()
    engines = {n: Engine.open(stores / n, settings) for n in "ABC" if (stores / n).exists()}
    if len(engines) < 3:
        print(f"needs the stores A, B and C in {stores} (run with --build)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    data = collect(engines, TRAINING)
    groups = [g for rows in data.values() for g in rows]
    fitted = fit_listwise(groups, l2=args.l2)
    report = {"all (training fit)": {"first stage": figures(groups, None), "ranker": figures(groups, fitted)}}
    if args.cv:
        for name in data:
            rest = [g for other, rows in data.items() if other != name for g in rows]
            w = fit_listwise(rest, l2=args.l2)
            report[f"{name} (fitted without it)"] = {"first stage": figures(data[name], None),
                                                     "ranker": figures(data[name], w)}
    for key, val in report.items():
        print(f"{key}: {json.dumps(val)}")
    print("weights:", dict(zip(FEATURES, fitted["weights"])))
    if args.dry_run:
        return 0
    info = {
        "format": RANKER_FORMAT,
        "name": "equisearch-ltr-1",
        "features": list(FEATURES),
        **fitted,
        # Outside what it learned from, the first stage's order stands (search/ltr.py).
        "max_query_words": longest_question(),
        "trained": {
            "by": "python -m ingest.ranker_train",
            "files": {name: len(rows) for name, rows in data.items()},
            "questions": len(groups),
            "with an answer among the candidates": int(sum(y.sum() > 0 for _, y in groups)),
            "candidates": settings.ranker_candidates,
            "l2": args.l2,
            "objective": "listwise softmax cross-entropy, L-BFGS",
            "figures": report,
            "seconds": round(time.perf_counter() - t0, 1),
        },
    }
    Path(args.out).write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.out}")
    if args.cv:
        write_report(report, info, data)
    return 0


def write_report(report: dict, info: dict, data: dict) -> None:
    """The ``Learned ranker`` section of bench/QUALITY.md."""
    from bench.common import machine_line, write_section

    rows = ["| questions | n | first stage recall@5 | ranker recall@5 | first stage MRR@5 | ranker MRR@5 |",
            "|---|---|---|---|---|---|"]
    for key, val in report.items():
        a, b = val["first stage"], val["ranker"]
        rows.append(f"| {key} | {a['n']} | {a['recall@5']} | {b['recall@5']} | {a['mrr@5']} | {b['mrr@5']} |")
    folds = [v for k, v in report.items() if k.endswith("(fitted without it)")]
    n = sum(v["first stage"]["n"] for v in folds)
    pooled = {side: {m: round(sum(v[side][m] * v[side]["n"] for v in folds) / n, 3) for m in ("recall@5", "mrr@5")}
              for side in ("first stage", "ranker")}
    rows.append(f"| **pooled, each file fitted without it** | {n} | {pooled['first stage']['recall@5']} | "
                f"{pooled['ranker']['recall@5']} | {pooled['first stage']['mrr@5']} | {pooled['ranker']['mrr@5']} |")
    weights = ", ".join(f"{f} {w:+.3f}" for f, w in zip(info["features"], info["weights"]))
    body = "\n".join([
        machine_line(), "",
        f"`python -m ingest.ranker_train --cv` (l2 {info['trained']['l2']}): the fused top "
        f"{info['trained']['candidates']} of the first stage, reordered by a linear model over "
        f"{len(info['features'])} features of question and passage (search/ltr.py), fitted by listwise softmax "
        "cross-entropy on the training files' answerable questions (labels: the passage holds an answer string). "
        "Recall@5 and MRR@5 here are of the reordered candidates before diversification (ask's own figures are "
        "in \"Answers on question sets\"). The rows \"fitted without it\" are the honest estimate: the ranker "
        "scored on a file none of whose questions it was fitted on. The blind sets are not read.", "",
        *rows, "",
        f"Shipped weights (standardised features, search/data/ranker.json): {weights}.",
    ])
    write_section(ROOT / "bench" / "QUALITY.md", "Learned ranker (training and leave-one-file-out)", body)


if __name__ == "__main__":
    raise SystemExit(main())
