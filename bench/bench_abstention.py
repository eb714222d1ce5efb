"""Abstention signals out of fold: bench/QUALITY.md "Abstention (out of fold)".

Usage::

    python bench/bench_abstention.py --fold-a DIR_A --fold-b DIR_B [--stores STORES] [--dump FILE] [--write]
    python bench/bench_abstention.py --load FILE [--write]

``DIR_A`` and ``DIR_B`` are the two cross-encoders of bench/bench_second_stage.py
(each trained without one half of the training questions). Every question of
the learned ranker's training files is asked as ``ask`` asks it, with the
cross-encoder that never saw it, and the answer's evidence is taken apart
into signals (:func:`signals`). Then, leaving one question file out at a
time, a logistic model is fitted on the other files' signals and its
threshold chosen there (the highest that keeps their answerable questions
wrongly abstained at or under the target); the left-out file is scored with
both. The word confidence (today's rule) is scored the same way, so the
comparison is like for like.

The question it answers: does a model over the reranker's probabilities and
finer word evidence abstain better than the hand-set word confidence on
question files it was not fitted on? (Measured 2026-12-04: not at the
operating point; nothing here is used by ``ask``.)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, write_section  # noqa: E402


#: The signals the logistic model reads, in order (see :func:`signals`).
FEATURES = (
    "best_cos", "share", "missing", "relevance_max", "relevance_first", "passage_share", "sentence_share",
    "sentence_relevance", "cue_missing", "number_missing", "terms",
)
#: A question that asks for an amount, a count or a share wants a number in its answer.
_ASKS_NUMBER = re.compile(
    r"\b(how (much|many)|what (percentage|proportion|share|number|amount|rate)|(per ?cent|percentage|proportion) of|"
    r"average|how big|what is the (rate|amount|figure|size))\b|£", re.I)


def signals(question, hits: Sequence, embedder, settings, *, reranker=None, query: str | None = None) -> dict:
    """The answer's evidence for ``question`` over ``hits``, one float each.

    * ``confidence``: the word confidence, as :func:`search.answer.compose_answer`
      reports it (not read by the model: it is made of the next three);
    * ``best_cos``: the best candidate sentence's cosine with the question;
    * ``share``: IDF-weighted share of the question's words found in any passage;
    * ``missing``: 1 when a specific word (name, number, unseen word) is in none;
    * ``relevance_max`` / ``relevance_first``: the reranker's probability for
      the best of the passages / for the first (0 without a reranker);
    * ``passage_share``: the best IDF-weighted share found in a *single*
      passage (a question whose words are spread over several passages is
      answered by none of them);
    * ``sentence_share``: the same share in the answer's best sentence;
    * ``sentence_relevance``: the reranker's probability for the best
      sentence read alone (``query``: the question as the reranker reads it);
    * ``cue_missing``: 1 when the question's kind needs a cue (a time for
      "how long", a date for "when", a defining phrase) and none of the three
      best sentences has it;
    * ``number_missing``: 1 when the question asks for an amount, count or
      share ("how much", "what percentage") and none of the three best
      sentences has a digit;
    * ``terms``: the question's content words (log).
    """
    from search import intent
    from search.answer import _CUE_REQUIRED, _CUES, candidate_sentences, compose_answer, hand_scores, \
        question_coverage

    asked = question.asked or intent.detect(question.text)
    hits = tuple(hits)
    cands = candidate_sentences(hits)
    cov = question_coverage(question, hits)
    relevance = [h.relevance for h in hits if h.relevance is not None]
    asks_number = bool(_ASKS_NUMBER.search(question.text))
    out = {"confidence": compose_answer(question, hits, embedder, settings).confidence,
           "share": float(cov.share), "missing": float(bool(cov.missing)),
           "terms": float(np.log1p(len(question.terms))),
           "relevance_max": float(max(relevance)) if relevance else 0.0,
           "relevance_first": float(hits[0].relevance) if hits and hits[0].relevance is not None else 0.0,
           "passage_share": max((question_coverage(question, [h]).share for h in hits), default=0.0)}
    if not cands:
        out.update(best_cos=0.0, sentence_share=0.0, sentence_relevance=0.0, cue_missing=1.0,
                   number_missing=float(asks_number))
        return out
    # The same sentence vectors and scores the answer used (the embedder caches them).
    cos = embedder.encode([c.text for c in cands], batch_size=64) @ np.asarray(question.vector, dtype=np.float32)
    top = [cands[i] for i in np.argsort(-np.asarray(hand_scores(question, asked, hits, cands, cos)), kind="stable")[:3]]
    cue = _CUES.get(asked.kind)
    out.update(
        best_cos=float(cos.max()),
        sentence_share=float(_sentence_share(question, top[0].text)),
        sentence_relevance=float(reranker.probability(query or question.text, [top[0].text])[0]) if reranker else 0.0,
        cue_missing=float(asked.kind in _CUE_REQUIRED and cue is not None and not any(cue.search(c.text) for c in top)),
        number_missing=float(asks_number and not any(re.search(r"\d", c.text) for c in top)),
    )
    return out


def _sentence_share(question, text: str) -> float:
    from search.answer import _stem
    from search.text import words

    seen = {_stem(w) for w in words(text)}
    total = found = 0.0
    for t in question.terms:
        w = question.weights.get(t, 1.0)
        total += w
        found += w * (_stem(t) in seen)
    return found / total if total else 1.0


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = 1.0):
    """L2 logistic regression on standardised signals (scikit-learn's; balanced classes): a scoring function."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(x, dtype=np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-9, scale, 1.0)
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=1000)
    clf.fit((x - mean) / scale, np.asarray(y, dtype=int))
    return lambda z: clf.predict_proba((np.asarray(z, dtype=np.float64) - mean) / scale)[:, 1]


def collect(stores: Path, fold_a: Path, fold_b: Path) -> list[dict]:
    """One row per training ask (bench_second_stage.training_asks): file, answerable, and every signal."""
    from bench.bench_second_stage import training_asks
    from search.api import Engine
    from search.settings import Settings

    base = Settings.from_env()
    engines = {(n, f): Engine.open(stores / n, dataclasses.replace(base, home=str(stores / n), reranker=str(d)))
               for n in "ABC" for f, d in (("A", fold_a), ("B", fold_b))}
    rows = []
    try:
        for file, fold, name, item in training_asks():
            engine = engines[name, fold]
            read, hits = engine.answer_inputs(item.question)
            s = signals(read, hits, engine._sentences, engine.settings, reranker=engine.reranker,
                        query=engine.model_query(item.question))
            rows.append({"file": file, "store": name, "answerable": bool(item.answerable), **s})
    finally:
        for engine in engines.values():
            engine.close()
    return rows


def threshold_for(score: np.ndarray, answerable: np.ndarray, target: float) -> float:
    """The highest threshold with at most ``target`` of the answerable scores below it."""
    pos = np.sort(np.asarray(score)[np.asarray(answerable, dtype=bool)])
    k = int(np.floor(target * len(pos)))
    return float(pos[k]) if k < len(pos) else float(pos[-1]) + 1e-9


def leave_one_file_out(rows: list[dict], names, target: float, c: float = 1.0) -> dict:
    """Scores of each file by a model fitted on the other files, and whether each row is answered
    (its threshold chosen on those other files' own scores)."""
    x = np.asarray([[r[n] for n in names] for r in rows], dtype=np.float64)
    y = np.asarray([r["answerable"] for r in rows], dtype=bool)
    f = np.asarray([r["file"] for r in rows])
    score = np.zeros(len(rows))
    kept = np.zeros(len(rows), dtype=bool)
    for name in dict.fromkeys(f):
        test = f == name
        predict = fit_logistic(x[~test], y[~test], c=c)
        t = threshold_for(predict(x[~test]), y[~test], target)
        score[test] = predict(x[test])
        kept[test] = score[test] >= t
    return {"score": score, "kept": kept, "y": y, "file": f}


def summary(y: np.ndarray, score: np.ndarray, kept: np.ndarray) -> tuple[float, float, float]:
    from sklearn.metrics import roc_auc_score

    return (round(float(roc_auc_score(y, score)), 3), round(float(np.mean(~kept[y])), 3),
            round(float(np.mean(~kept[~y])), 3))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", type=Path, default=Path("/work/benchcache/answers"))
    ap.add_argument("--fold-a", type=Path, help="cross-encoder trained without ranker_train_questions")
    ap.add_argument("--fold-b", type=Path, help="cross-encoder trained without the other five files")
    ap.add_argument("--dump", type=Path, help="write the collected signals (JSON lines) here")
    ap.add_argument("--load", type=Path, help="read signals written by --dump instead of collecting")
    ap.add_argument("--target", type=float, default=0.05, help="answerable wrongly abstained allowed when choosing")
    ap.add_argument("--write", action="store_true", help="write the section of bench/QUALITY.md")
    args = ap.parse_args()
    if args.load:
        rows = [json.loads(line) for line in args.load.read_text().splitlines() if line.strip()]
    else:
        if not (args.fold_a and args.fold_b):
            sys.exit("--fold-a and --fold-b are needed to collect the signals (or --load a dump)")
        rows = collect(args.stores, args.fold_a, args.fold_b)
        if args.dump:
            args.dump.write_text("".join(json.dumps(r) + "\n" for r in rows))
    lofo = leave_one_file_out
    y = np.asarray([r["answerable"] for r in rows], dtype=bool)
    sets = [("word confidence (today's rule)", ["confidence"]),
            ("word confidence + best passage probability", ["confidence", "relevance_max"]),
            *[(f"all but {n}", [m for m in FEATURES if m != n]) for n in FEATURES],
            ("all signals", list(FEATURES))]
    table = ["| signals | AUC | answerable wrongly abstained | unanswerable abstained |", "|---|---|---|---|"]
    for label, names in sets:
        res = lofo(rows, names, args.target)
        auc, wrong, right = summary(res["y"], res["score"], res["kept"])
        table.append(f"| {label} | {auc} | {wrong} | {right} |")
        print(table[-1], flush=True)
    per_file = ["| left-out file | answerable | unanswerable | wrongly abstained: words / model | "
                "unanswerable abstained: words / model |", "|---|---|---|---|---|"]
    words = lofo(rows, ["confidence"], args.target)
    model = lofo(rows, list(FEATURES), args.target)
    f = np.asarray([r["file"] for r in rows])
    for name in dict.fromkeys(f):
        m = f == name
        ya = y[m]

        def rate(res, pick, m=m):
            return f"{np.mean(~res['kept'][m][pick]):.2f}" if pick.any() else "-"
        per_file.append(f"| {name} | {int(ya.sum())} | {int((~ya).sum())} | {rate(words, ya)} / {rate(model, ya)} | "
                        f"{rate(words, ~ya)} / {rate(model, ~ya)} |")
    print("\n".join(per_file))
    rates = (0.02, 0.05, 0.10, 0.15)
    curve = ["| score | " + " | ".join(f"wrongly {r:.0%}" for r in rates) + " |", "|---|" + "---|" * len(rates)]
    scored = [("word confidence (today's rule)", np.asarray([r["confidence"] for r in rows]))]
    scored += [(f"all signals, C={c}", lofo(rows, list(FEATURES), args.target, c)["score"]) for c in (0.1, 1.0, 10.0)]
    for label, score in scored:
        cells = [f"{np.mean(score[~y] < threshold_for(score, y, r)):.2f}" for r in rates]
        curve.append(f"| {label} | " + " | ".join(cells) + " |")
    print("\n".join(curve))
    # How abstain_threshold is chosen: the word confidence as ask applies it, at fixed thresholds.
    from search.settings import Settings

    default = Settings().abstain_threshold
    conf = np.asarray([r["confidence"] for r in rows])
    sweep = ["| abstain_threshold | answerable wrongly abstained | unanswerable abstained |", "|---|---|---|"]
    for t in sorted({round(1.0 + 0.05 * i, 2) for i in range(6)} | {default}):
        mark = " (default)" if t == default else ""
        sweep.append(f"| {t:.2f}{mark} | {np.mean(conf[y] < t):.3f} | {np.mean(conf[~y] < t):.3f} |")
    print("\n".join(sweep))
    if args.write:
        body = "\n".join([
            machine_line(), "",
            f"{int(y.sum())} answerable and {int((~y).sum())} unanswerable questions of the learned ranker's training "
            "files, each asked with the cross-encoder that never saw it (`python bench/bench_abstention.py`). Leave "
            "one file out: a logistic model (standardised signals, L2 C=1) is fitted on the other files and its "
            f"threshold chosen there (at most {args.target:.0%} of their answerable questions abstained); the "
            "left-out file is scored with both. The learned ranker was fitted on all of these files, so every "
            "figure here reads somewhat higher than on new questions.", "",
            *table, "", *per_file, "",
            "Unanswerable questions abstained when the threshold is set on the pooled scores (all files at once, "
            "each scored out of fold) for a given share of answerable questions wrongly abstained; the three "
            "regularisation strengths were all tried, so their best cell flatters the model a little:", "",
            *curve, "",
            "The word confidence as `ask` applies it (`abstain_threshold`), every question out of fold; the "
            "default is the highest threshold at which at most 2% of the answerable questions abstain (held-out "
            "sets have read 2-6x the tuning figure):", "",
            *sweep, "",
            f"Not kept: at the operating point (threshold chosen on the other files) the model abstained on "
            f"{np.mean(~model['kept'][~y]):.3f} of the unanswerable questions with {np.mean(~model['kept'][y]):.3f} "
            f"wrongly, the word confidence on {np.mean(~words['kept'][~y]):.3f} with {np.mean(~words['kept'][y]):.3f}: "
            "its higher AUC comes from questions far from any threshold. The signals a reader needs (is this "
            "passage about the thing asked, or about something that shares its words?) are not in them; "
            "`ask` keeps the word confidence.", "",
        ])
        write_section(ROOT / "bench" / "QUALITY.md", "Abstention (out of fold)", body)


if __name__ == "__main__":
    main()
