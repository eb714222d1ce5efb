"""Train the answer's sentence scorer (search/selector.py) on question files with known answers.

Usage::

    python -m ingest.answer_train [--stores DIR] [--out search/data/answerer.json] [--cv]

For each answerable question of the training files (the learned ranker's,
``ingest.ranker_train.TRAINING``; the blind sets are never read), the store
it is about is asked as ``equisearch ask`` does, up to the point where the
answer picks its sentences: the top passages (first stage and learned
ranker), their usable sentences and each one's cosine to the question. Each
sentence becomes a row of :data:`search.selector.SENTENCE_FEATURES`,
labelled 1 when it holds one of the question's answer strings (the match
``equisearch eval`` uses) and ``--passage-label`` (0: none) when only its
passage does. The weights are fitted by listwise softmax cross-entropy
(:func:`search.ltr.fit_listwise`) and written as JSON.

``--cv`` also reports, per training file, what the answers would be with
weights fitted on the other files only (the honest estimate), beside the
hand-set score: **useful** (a cited passage holds the answer) and **exact**
(the answer's sentences do), over the questions the answer does not abstain
on (abstention is not this model's decision). The choosing itself is the
answer's own (:func:`search.answer._choose`). Deterministic.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "search" / "data" / "answerer.json"


@dataclasses.dataclass
class Group:
    """One question's candidate sentences, as the answer would see them."""

    x: np.ndarray          # feature rows
    y: np.ndarray          # labels
    hand: np.ndarray       # the hand-set score (answer_scorer off)
    cands: list
    cos: np.ndarray
    hits: tuple
    kind_list: bool
    abstained: bool
    wanted: list


def collect(engines: dict, files, passage_label: float) -> dict[str, list[Group]]:
    from ingest.ranker_train import store_of
    from search.answer import candidate_sentences, compose_answer, hand_scores
    from search.evaluate import load_eval, match_text
    from search.selector import sentence_features

    out: dict[str, list[Group]] = {}
    for store, path in files:
        if not path.is_file():
            print(f"skipped {path}: not found", file=sys.stderr)
            continue
        rows = []
        for item in load_eval(path):
            if not item.answerable:
                continue
            engine = engines[store_of(item.source) if store == "auto" else store]
            read, hits = engine.answer_inputs(item.question)
            hits = tuple(hits)
            cands = candidate_sentences(hits)
            if not cands:
                continue
            vecs = engine._sentences.encode([c.text for c in cands], batch_size=64)
            cos = vecs @ np.asarray(read.vector, dtype=np.float32).reshape(-1)
            wanted = [match_text(a) for a in item.answers]
            holds = [any(w in match_text(h.chunk.text) for w in wanted) for h in hits]
            y = np.asarray([1.0 if any(w in match_text(c.text) for w in wanted)
                            else passage_label if holds[c.ref - 1] else 0.0 for c in cands])
            plain = dataclasses.replace(engine.settings, answer_scorer="off")
            answer = compose_answer(read, hits, engine._sentences, plain)
            rows.append(Group(sentence_features(read, hits, cands, cos), y, np.asarray(hand_scores(read, read.asked, hits, cands, cos)),
                              cands, cos, hits, read.asked.wants_list, answer.abstained, wanted))
        out[path.name] = rows
    return out


def answer_figures(groups: list[Group], weights: dict | None, settings) -> dict:
    """useful / exact of the answers chosen by ``weights`` (None: the hand-set score), abstentions left out."""
    from search.answer import _choose
    from search.evaluate import match_text

    n = useful = exact = 0
    for g in groups:
        if g.abstained:
            continue
        if weights is None:
            scores = g.hand
        else:
            scores = ((g.x - np.asarray(weights["mean"])) / np.asarray(weights["scale"])) @ np.asarray(weights["weights"])
        order = np.argsort(-np.asarray(scores), kind="stable")
        limit = settings.answer_points if g.kind_list else settings.answer_sentences
        chosen = _choose(g.cands, list(scores), order, g.cos, g.hits, limit, one_per_passage=g.kind_list,
                         follow=not g.kind_list)
        n += 1
        refs = {s.ref for s in chosen}
        useful += any(any(w in match_text(g.hits[r - 1].chunk.text) for w in g.wanted) for r in refs)
        said = match_text(" ".join(s.text for s in chosen))
        exact += any(w in said for w in g.wanted)
    return {"n": n, "useful": round(useful / n, 3) if n else None, "exact": round(exact / n, 3) if n else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", default="/work/benchcache/answers", help="folder of the stores A, B, C")
    ap.add_argument("--build", action="store_true", help="build missing stores first (bench/bench_answers.py)")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--l2", type=float, default=0.01, help="L2 penalty on the standardised weights")
    ap.add_argument("--passage-label", type=float, default=0.0,
                    help="label of a sentence whose passage holds the answer but which does not itself")
    ap.add_argument("--cv", action="store_true", help="also report leave-one-file-out figures")
    ap.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from ingest.ranker_train import TRAINING
    from search.api import Engine
    from search.ltr import fit_listwise
    from search.selector import SELECTOR_FORMAT, SENTENCE_FEATURES
    from search.settings import Settings

    stores = Path(args.stores)
    if args.build:
        from bench.bench_answers import build

        for name in "ABC":
            build(stores, name)
    settings = Settings.from_env()
    engines = {n: Engine.open(stores / n, dataclasses.replace(settings, home=str(stores / n)))
               for n in "ABC" if (stores / n).exists()}
    if len(engines) < 3:
        print(f"needs the stores A, B and C in {stores} (run with --build)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    data = collect(engines, TRAINING, args.passage_label)
    groups = [g for rows in data.values() for g in rows]
    pairs = lambda gs: [(g.x, g.y) for g in gs]  # noqa: E731
    fitted = fit_listwise(pairs(groups), l2=args.l2)
    report = {"all (training fit)": {"hand-set": answer_figures(groups, None, settings),
                                     "scorer": answer_figures(groups, fitted, settings)}}
    if args.cv:
        for name in data:
            rest = [g for other, rows in data.items() if other != name for g in rows]
            w = fit_listwise(pairs(rest), l2=args.l2)
            report[f"{name} (fitted without it)"] = {"hand-set": answer_figures(data[name], None, settings),
                                                     "scorer": answer_figures(data[name], w, settings)}
    for key, val in report.items():
        print(f"{key}: {json.dumps(val)}")
    print("weights:", dict(zip(SENTENCE_FEATURES, fitted["weights"])))
    if args.dry_run:
        return 0
    info = {
        "format": SELECTOR_FORMAT,
        "name": "equisearch-answer-1",
        "features": list(SENTENCE_FEATURES),
        **fitted,
        "trained": {
            "by": "python -m ingest.answer_train",
            "files": {name: len(rows) for name, rows in data.items()},
            "questions": len(groups),
            "passage_label": args.passage_label,
            "l2": args.l2,
            "ranker": settings.ranker,
            "objective": "listwise softmax cross-entropy over each question's candidate sentences, L-BFGS",
            "figures": report,
            "seconds": round(time.perf_counter() - t0, 1),
        },
    }
    Path(args.out).write_text(json.dumps(info, indent=1) + "\n")
    print(f"wrote {args.out}")
    if args.cv:
        write_report(report, info)
    return 0


def write_report(report: dict, info: dict) -> None:
    """The ``Answer sentence scorer`` section of bench/QUALITY.md."""
    from bench.common import machine_line, write_section

    rows = ["| questions | answered | hand-set useful | scorer useful | hand-set exact | scorer exact |",
            "|---|---|---|---|---|---|"]
    for key, val in report.items():
        a, b = val["hand-set"], val["scorer"]
        rows.append(f"| {key} | {a['n']} | {a['useful']} | {b['useful']} | {a['exact']} | {b['exact']} |")
    folds = [v for k, v in report.items() if k.endswith("(fitted without it)")]
    n = sum(v["hand-set"]["n"] for v in folds)
    if n:
        pooled = {side: {m: round(sum(v[side][m] * v[side]["n"] for v in folds if v[side]["n"]) / n, 3)
                         for m in ("useful", "exact")} for side in ("hand-set", "scorer")}
        rows.append(f"| **pooled, each file fitted without it** | {n} | {pooled['hand-set']['useful']} | "
                    f"{pooled['scorer']['useful']} | {pooled['hand-set']['exact']} | {pooled['scorer']['exact']} |")
    weights = ", ".join(f"{f} {w:+.3f}" for f, w in zip(info["features"], info["weights"]))
    body = "\n".join([
        machine_line(), "",
        f"`python -m ingest.answer_train --cv` (l2 {info['trained']['l2']}, passage label "
        f"{info['trained']['passage_label']}): the answer's candidate sentences (of the top passages after the "
        f"learned ranker) scored by a linear model over {len(info['features'])} features (search/selector.py), "
        "fitted by listwise softmax cross-entropy on the training files' answerable questions (label 1: the "
        "sentence holds an answer string; the passage label: only its passage does). The answer is then chosen "
        "as `ask` chooses it. Figures are over the questions the answer does not abstain on; rows \"fitted "
        "without it\" are the honest estimate. The blind sets are not read.", "",
        *rows, "",
        f"Shipped weights (standardised features, search/data/answerer.json): {weights}.",
    ])
    write_section(ROOT / "bench" / "QUALITY.md", "Answer sentence scorer (training and leave-one-file-out)", body)


if __name__ == "__main__":
    raise SystemExit(main())
