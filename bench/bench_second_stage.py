"""The cross-encoder after the learned ranker, measured out of fold: bench/QUALITY.md "Second stage".

Usage::

    python -m ingest.rerank_train --out DIR_A --questions STORES --exclude ranker_train_questions.jsonl
    python -m ingest.rerank_train --out DIR_B --questions STORES --exclude seeds.jsonl --exclude plac.jsonl \\
        --exclude starter_questions.jsonl --exclude edu_questions.jsonl --exclude teacher_questions.jsonl
    python bench/bench_second_stage.py --fold-a DIR_A --fold-b DIR_B [--stores STORES]

Two cross-encoders are trained as the shipped one is, each without one half
of the training questions: A without tests/data/ranker_train_questions.jsonl
(100 questions), B without the other five files (105). Each question is
then scored by the model that never saw it, so the figures say what the
second stage does on new questions (the shipped model is trained on both
halves; the blind sets measure it in "Answers on question sets").

For every question of the learned ranker's training files (answerable and
not), the store it is about is searched (first stage, learned ranker) and
the top ``N`` passages are re-ordered by ``w`` x the min-max cross-encoder
score + (1 - w) x the min-max ranker score, as search does; recall@5 and
MRR@5 against the answer strings, per ``N`` and ``w``. Then abstention: the
answer's word confidence with ``relevance_weight`` x the best probability
among the top 5 added, and for each threshold the share of answerable
questions wrongly abstained and of unanswerable ones abstained.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, write_section  # noqa: E402

FOLD_A_EXCLUDES = ("ranker_train_questions.jsonl",)


def _minmax(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    span = v.max() - v.min()
    return (v - v.min()) / span if span > 1e-12 else np.zeros_like(v)


def training_asks():
    """Every ask of the learned ranker's training files, as (file, fold, store, item).

    ``fold`` names the cross-encoder that never saw the file ("A" or "B");
    a question of the ranker's own file goes to the store of its source, and
    an unanswerable one of that file to both stores B and C.
    """
    from ingest.ranker_train import TRAINING, store_of
    from search.evaluate import load_eval

    for store, path in TRAINING:
        if not path.is_file():
            continue
        fold = "A" if path.name in FOLD_A_EXCLUDES else "B"
        for item in load_eval(path):
            names = [store_of(item.source) if store == "auto" else store]
            if store == "auto" and not item.answerable:
                names = ["B", "C"]  # an unanswerable training question is asked of both stores
            for name in names:
                yield path.name, fold, name, item


def collect(stores: Path, fold_a: Path, fold_b: Path) -> list[dict]:
    from search.answer import compose_answer
    from search.api import Engine
    from search.evaluate import match_text
    from search.ltr import order
    from search.rerank import OnnxReranker
    from search.settings import Settings

    base = dataclasses.replace(Settings.from_env(), reranker="off")
    engines = {n: Engine.open(stores / n, dataclasses.replace(base, home=str(stores / n))) for n in "ABC"}
    models = {"A": OnnxReranker(fold_a), "B": OnnxReranker(fold_b)}
    rows = []
    for file, fold, name, item in training_asks():
        model = models[fold]  # the one that never saw this file
        engine = engines[name]
        head, chunks, x = engine.ranking_candidates(item.question)
        if engine.ranker is not None and engine.ranker.applies_to(item.question):
            scores = engine.ranker.score(x)
        else:
            scores = -np.arange(len(head), dtype=np.float32)
        best = order(scores)
        texts = [chunks[head[i].chunk_id].text for i in best]
        wanted = [match_text(a) for a in item.answers]
        read, hits = engine.answer_inputs(item.question)
        answer = compose_answer(read, hits, engine._sentences, engine.settings)
        rows.append({
            "file": file, "answerable": item.answerable,
            "y": np.asarray([float(item.answerable and any(w in match_text(t) for w in wanted)) for t in texts]),
            "ranker": np.asarray(scores)[best], "ce": model.score(engine.model_query(item.question), texts),
            "to_probability": model.to_probability, "confidence": answer.confidence,
        })
    return rows


def ranking(rows, n: int, w: float) -> tuple[float, float]:
    """recall@5, MRR@5 of the answerable rows with the top ``n`` re-ordered at reranker share ``w``."""
    hit = rr = 0.0
    answerable = [r for r in rows if r["answerable"]]
    for r in answerable:
        k = min(n, len(r["y"]))
        final = w * _minmax(r["ce"][:k]) + (1 - w) * _minmax(r["ranker"][:k])
        idx = list(np.argsort(-final, kind="stable")) + list(range(k, len(r["y"])))
        for rank, i in enumerate(idx[:5], start=1):
            if r["y"][i] > 0:
                hit, rr = hit + 1, rr + 1 / rank
                break
    return round(hit / len(answerable), 3), round(rr / len(answerable), 3)


def answers(stores: Path, fold_a: Path, fold_b: Path) -> list[str]:
    """Answer-level figures out of fold: the answer's edge for the first passage
    (``LEAD_WEIGHT``) and the cross-encoder scoring the candidate sentences."""
    import search.answer as answer_mod
    from search.api import Engine
    from search.evaluate import match_text
    from search.settings import Settings

    base = Settings.from_env()
    engines = {(n, f): Engine.open(stores / n, dataclasses.replace(base, home=str(stores / n), reranker=str(d)))
               for n in "ABC" for f, d in (("A", fold_a), ("B", fold_b))}
    items = [(engines[name, fold], item) for _, fold, name, item in training_asks()]
    inputs = [engine.answer_inputs(item.question) for engine, item in items]
    hand, lead = answer_mod.hand_scores, answer_mod.LEAD_WEIGHT
    sentence_ce: dict = {}

    def with_sentence_ce(weight):
        def scores(question, asked, hits, cands, cos):
            out = hand(question, asked, hits, cands, cos)
            if not weight or not cands:
                return out
            engine = current["engine"]
            key = (id(engine), question.text)
            if key not in sentence_ce:
                sentence_ce[key] = np.asarray(engine.reranker.score(engine.model_query(question.text),
                                                                    [c.text for c in cands]))
            ce = sentence_ce[key]
            z = (ce - ce.max()) / (ce.std() or 1.0)
            return [o + weight * v for o, v in zip(out, z)]
        return scores

    current: dict = {}

    def figures() -> str:
        useful = exact = wrong = right = n_ans = n_un = 0
        for i, (engine, item) in enumerate(items):
            current["engine"] = engine
            read, hits = inputs[i]
            a = answer_mod.compose_answer(read, hits, engine._sentences, engine.settings)
            if not item.answerable:
                n_un += 1
                right += a.abstained
                continue
            n_ans += 1
            if a.abstained:
                wrong += 1
                continue
            wanted = [match_text(w) for w in item.answers]
            useful += any(any(w in match_text(a.passages[s.ref - 1].chunk.text) for w in wanted) for s in a.sentences)
            exact += any(w in match_text(" ".join(s.text for s in a.sentences)) for w in wanted)
        return f"{useful / n_ans:.3f} | {exact / n_ans:.3f} | {wrong / n_ans:.3f} | {right / n_un:.3f}"

    rows = ["| answer's sentence score | useful | exact | answerable wrongly abstained | unanswerable abstained |",
            "|---|---|---|---|---|"]
    try:
        for weight in (0.0, 0.2, 0.4, 0.6):
            answer_mod.LEAD_WEIGHT = weight
            rows.append(f"| LEAD_WEIGHT {weight} | {figures()} |")
        answer_mod.LEAD_WEIGHT = lead
        for weight in (0.02, 0.05, 0.1):
            answer_mod.hand_scores = with_sentence_ce(weight)
            rows.append(f"| LEAD_WEIGHT {lead} + {weight} x the cross-encoder's z-score of each sentence | {figures()} |")
    finally:
        answer_mod.hand_scores, answer_mod.LEAD_WEIGHT = hand, lead
    for engine in engines.values():
        engine.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", type=Path, default=Path("/work/benchcache/answers"))
    ap.add_argument("--fold-a", type=Path, required=True, help="cross-encoder trained without ranker_train_questions")
    ap.add_argument("--fold-b", type=Path, required=True, help="cross-encoder trained without the other five files")
    ap.add_argument("--relevance-weight", type=float, default=1.0)
    args = ap.parse_args()
    rows = collect(args.stores, args.fold_a, args.fold_b)
    answerable = [r for r in rows if r["answerable"]]
    sizes = (8, 10, 12, 15, 20, 30)
    shares = (0.0, 0.3, 0.4, 0.5, 0.6, 1.0)
    table = ["| passages read (N) | " + " | ".join(f"w {w}" for w in shares) + " |", "|---|" + "---|" * len(shares)]
    for n in sizes:
        cells = [f"{a} / {b}" for a, b in (ranking(rows, n, w) for w in shares)]
        table.append(f"| {n} | " + " | ".join(cells) + " |")
    per_file = ["| questions | n | ranker recall@5 / MRR@5 | + reranker (N 12, w 0.5) |", "|---|---|---|---|"]
    for name in dict.fromkeys(r["file"] for r in answerable):
        sub = [r for r in rows if r["file"] == name]
        n = sum(r["answerable"] for r in sub)
        a, b = ranking(sub, 12, 0.0), ranking(sub, 12, 0.5)
        per_file.append(f"| {name} | {n} | {a[0]} / {a[1]} | {b[0]} / {b[1]} |")
    y = np.asarray([r["answerable"] for r in rows], dtype=bool)
    words = np.asarray([r["confidence"] for r in rows])
    best_p = np.asarray([float(np.max(r["to_probability"](np.asarray(r["ce"][:5])))) for r in rows])
    both = words + args.relevance_weight * best_p
    from sklearn.metrics import roc_auc_score

    auc = {name: round(float(roc_auc_score(y, s)), 3) for name, s in
           (("word confidence", words), ("reranker best probability", best_p), ("both", both))}
    trade = ["| confidence | threshold | answerable wrongly abstained | unanswerable abstained |", "|---|---|---|---|"]
    for label, s, thresholds in (("word confidence", words, (1.0, 1.05, 1.10, 1.15, 1.2)),
                                 (f"word + {args.relevance_weight} x best probability", both,
                                  (1.35, 1.4, 1.45, 1.5, 1.55))):
        for t in thresholds:
            trade.append(f"| {label} | {t} | {np.mean(s[y] < t):.3f} | {np.mean(s[~y] < t):.3f} |")
    body = "\n".join([
        machine_line(), "",
        "Out of fold: each training question scored by a cross-encoder trained without its file's half "
        "(`python bench/bench_second_stage.py`, the commands in its docstring). The top N passages after the "
        "learned ranker are re-ordered by w x the cross-encoder's min-max score + (1 - w) x the ranker's. "
        f"{len(answerable)} answerable questions, {int((~y).sum())} unanswerable; the learned ranker itself was "
        "fitted on all of these files, so its own column reads higher than on new questions (its honest figure "
        "is in \"Learned ranker\").", "",
        "recall@5 / MRR@5 (w 0: the learned ranker alone):", "", *table, "",
        *per_file, "",
        f"Abstention signals, AUC (answerable vs unanswerable): {auc}.", "",
        *trade, "",
        "Answers, out of fold (each question asked with the reranker that never saw it; `ask` as it runs, "
        "abstention by the word confidence):", "",
        *answers(args.stores, args.fold_a, args.fold_b), "",
    ])
    write_section(ROOT / "bench" / "QUALITY.md", "Second stage (cross-encoder trained on questions, out of fold)", body)
    print(body)


if __name__ == "__main__":
    main()
