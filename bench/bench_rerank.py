"""Second-stage rerankers compared on the current hybrid top-N, written to bench/QUALITY.md ("Reranking").

Usage: python bench/bench_rerank.py [--depth 20] [--arguana-queries 200] [--model-dir DIR]
                                    [--fp32 DIR/model.onnx] [--also DIR ...]

The figures in bench/QUALITY.md came from
``--fp32 OUT/model.onnx --also UNTRAINED --also RUN1 --also RUN2`` where OUT is
the ``python -m ingest.rerank_train`` folder of the shipped model and the
others are the earlier runs (their commands are printed with the table). The
first run builds the three candidate stores (~1 h on a busy machine); later
runs re-use them and every cached score.

Candidates come from bench/rerank_candidates.py (built once, cached in
``--cache``): the real ingest and hybrid search over SciFact test, ArguAna
test, and corpus/ + shared/data/edu_plac for the dev questions
(shared/dev-eval/plac.jsonl, seeds.jsonl). Each method reorders the same top
``--depth`` passages; nothing below them moves.

Methods:

* ``hybrid``: the first stage's order (the baseline).
* ``late``: sentence-level late interaction with the bundled bi-encoder, no
  training: each passage's sentences are encoded, the passage scores
  ``minmax(fused) + minmax(softmax-pooled sentence cosine)`` within the
  question's list (the fused score already carries the passage cosine and
  BM25).
* ``ce``: the bundled cross-encoder alone (int8 ONNX); ``ce fp32`` the same
  model unquantised, to show what int8 costs.
* ``ce + hybrid``: ``minmax(cross-encoder) + w * minmax(fused)``.

Dev questions follow search/evaluate.py (a hit = an answer substring in one
of the top 5 passages; MRR over the top 5), with at most ``per_doc_limit``
(3) passages a document as Engine.search places them. ArguAna is scored as
``equisearch eval-beir`` does (the query's own document may be ranked) and as
BEIR does (it is dropped). Latency: reranking 30 dev passages, one question
at a time, p50 over the dev questions.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, percentile, write_section  # noqa: E402
from bench.rerank_candidates import DEFAULT_CACHE, beir_candidates, dev_candidates  # noqa: E402


def _table(rows, header):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def minmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    span = x.max() - x.min() if len(x) else 0.0
    return (x - x.min()) / span if span > 0 else np.ones_like(x)


def ndcg(ranked: list[str], rel: dict[str, int], k: int = 10) -> float:
    dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted((g for g in rel.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def limit_per_doc(order: list[int], docs: list[str], limit: int = 3) -> list[int]:
    """What diversify() does to a reordered list: at most ``limit`` a document, the rest after."""
    seen: dict[str, int] = {}
    first, rest = [], []
    for i in order:
        seen[docs[i]] = seen.get(docs[i], 0) + 1
        (first if seen[docs[i]] <= limit else rest).append(i)
    return first + rest


class ScoreCache:
    """Cross-encoder scores per (model file, set, depth): the table can be redone without rescoring."""

    def __init__(self, cache: Path, reranker, tag: str):
        self.reranker, self.dir = reranker, cache / "scores"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.tag = tag

    def scores(self, name: str, queries: list[dict], depth: int) -> list[np.ndarray]:
        path = self.dir / f"{self.tag}-{name}-{depth}-{len(queries)}.json"
        if path.exists():
            return [np.asarray(s, dtype=np.float32) for s in json.loads(path.read_text())]
        out = []
        for q in queries:
            out.append(self.reranker.score(q["query"], [c["text"] for c in q["candidates"][:depth]]))
        path.write_text(json.dumps([s.tolist() for s in out]))
        return out


def late_scores(embedder, queries: list[dict], depth: int, tau: float = 0.05) -> list[np.ndarray]:
    """Softmax-pooled sentence cosine per passage (bundled bi-encoder)."""
    from search.text import sentence_spans

    sent_vecs: dict[str, np.ndarray] = {}
    texts = {c["text"] for q in queries for c in q["candidates"][:depth]}
    flat, owner = [], []
    for t in texts:
        sents = [t[a:b] for a, b in sentence_spans(t)] or [t]
        flat += sents
        owner += [t] * len(sents)
    vecs = embedder.encode(flat, batch_size=64)
    groups: dict[str, list[int]] = {}
    for i, t in enumerate(owner):
        groups.setdefault(t, []).append(i)
    for t, idx in groups.items():
        sent_vecs[t] = vecs[idx]
    qv = embedder.encode([q["query"] for q in queries], batch_size=32)
    out = []
    for q, v in zip(queries, qv):
        row = []
        for c in q["candidates"][:depth]:
            cos = sent_vecs[c["text"]] @ v
            row.append(tau * np.log(np.sum(np.exp((cos - cos.max()) / tau))) + cos.max())
        out.append(np.asarray(row, dtype=np.float32))
    return out


def fused(q: dict, depth: int) -> np.ndarray:
    return np.asarray([c["fused"] for c in q["candidates"][:depth]], dtype=np.float64)


def orders(queries: list[dict], depth: int, method: str, s: dict[str, list[np.ndarray]], w: float = 0.0):
    """Candidate index order per question for ``method``; candidates below ``depth`` keep their place."""
    out = []
    for i, q in enumerate(queries):
        n = min(depth, len(q["candidates"]))
        if method == "hybrid" or n == 0:
            top = list(range(n))
        else:
            f = minmax(fused(q, depth)[:n])
            val = minmax(s[method][i][:n]) + w * f
            # Ties (e.g. all equal) keep first-stage order.
            top = sorted(range(n), key=lambda j: (-val[j], j))
        out.append(top + list(range(n, len(q["candidates"]))))
    return out


def beir_metrics(queries: list[dict], ords: list[list[int]], drop_own: bool = False) -> float:
    vals = []
    for q, o in zip(queries, ords):
        ranked = [q["candidates"][j]["doc"] for j in o]
        if drop_own:
            ranked = [d for d in ranked if d != q["own_id"]]
        vals.append(ndcg(ranked, q["qrels"], 10))
    return round(float(np.mean(vals)), 4)


def dev_metrics(queries: list[dict], ords: list[list[int]], k: int = 5) -> dict:
    out = {}
    for fname in ("plac", "seeds"):
        rec, rr = [], []
        for q, o in zip(queries, ords):
            if q["file"] != fname or not q["answers"]:
                continue
            o = limit_per_doc(o, [c["doc"] for c in q["candidates"]], 3)
            gains = [q["candidates"][j]["gain"] for j in o[:k]]
            rank = next((r for r, g in enumerate(gains, 1) if g), None)
            rec.append(rank is not None)
            rr.append(1 / rank if rank else 0.0)
        out[fname] = (round(float(np.mean(rec)), 3), round(float(np.mean(rr)), 3))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=str(DEFAULT_CACHE))
    ap.add_argument("--depth", type=int, default=20, help="first-stage passages reranked")
    ap.add_argument("--arguana-queries", type=int, default=200, help="ArguAna queries reranked (0 = all 1406)")
    ap.add_argument("--model-dir", default="", help="reranker folder (default: search/data/reranker)")
    ap.add_argument("--fp32", default="", help="folder or file of the same model in fp32 ONNX, to price int8")
    ap.add_argument("--also", action="append", default=[], help="another reranker folder to score (SciFact, dev)")
    ap.add_argument("--weights", default="0,0.5,1", help="w values for ce + w*hybrid")
    ap.add_argument("--out", default=str(ROOT / "bench" / "QUALITY.md"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="30 SciFact and 20 ArguAna queries, nothing written")
    args = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    sets = {"dev": json.loads(dev_candidates(cache).read_text())}
    for name in ("scifact", "arguana"):
        sets[name] = json.loads(beir_candidates(name, cache).read_text())
    data = {k: v["queries"] for k, v in sets.items()}
    if args.smoke:
        args.no_write = True
        data["scifact"] = data["scifact"][:30]
        args.arguana_queries = 20
    full_arguana = data["arguana"]
    if args.arguana_queries and len(full_arguana) > args.arguana_queries:
        data["arguana"] = random.Random(13).sample(full_arguana, args.arguana_queries)

    from search.onnx import OnnxEmbedder
    from search.rerank import BUNDLED_DIR, OnnxReranker, SentenceReranker

    folder = Path(args.model_dir) if args.model_dir else BUNDLED_DIR
    rr = OnnxReranker(folder, threads=2)
    sha = hashlib.sha256((folder / rr.info["file"]).read_bytes()).hexdigest()[:12]
    size_mb = (folder / rr.info["file"]).stat().st_size / 1e6
    embedder = OnnxEmbedder(cache / "dev-store" / "query-encoder", threads=2)
    depth = args.depth
    scores: dict[str, dict[str, list[np.ndarray]]] = {}
    timing: dict[str, float] = {}
    for name, qs in data.items():
        t0 = time.perf_counter()
        s = {"ce": ScoreCache(cache, rr, sha).scores(name, qs, depth)}
        timing[f"ce {name}"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        late_path = cache / "scores" / f"late-{name}-{depth}-{len(qs)}.json"
        if late_path.exists():
            s["late"] = [np.asarray(x) for x in json.loads(late_path.read_text())]
        else:
            s["late"] = late_scores(embedder, qs, depth)
            late_path.write_text(json.dumps([x.tolist() for x in s["late"]]))
        timing[f"late {name}"] = time.perf_counter() - t0
        scores[name] = s
    # Other ONNX rerankers (the fp32 export, earlier training runs): SciFact and dev only (scoring time).
    extras = []  # (key, label, reranker, MB)
    specs = ([("ce32", "fp32", args.fp32)] if args.fp32 else []) + [
        (f"also{n}", None, spec) for n, spec in enumerate(args.also)]
    for key, label, spec in specs:
        p = Path(spec)
        other = OnnxReranker(p if p.is_dir() else p.parent, threads=2)
        if p.is_file():  # a file next to a reranker.json (model.onnx beside model.int8.onnx)
            import onnxruntime as ort

            other._session = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
        f = p if p.is_file() else p / other.info["file"]
        osha = hashlib.sha256(f.read_bytes()).hexdigest()[:12]
        label = label or f"{p.name}: {other.info.get('note', other.info.get('model', ''))}"
        extras.append((key, label, other, f.stat().st_size / 1e6))
        for name, qs in data.items():
            if name != "arguana":
                scores[name][key] = ScoreCache(cache, other, osha).scores(name, qs, depth)
    fp32 = next((e[2] for e in extras if e[0] == "ce32"), None)

    # Latency: rerank 30 dev passages per question (the cross-encoder; late interaction encodes sentences).
    lat = {"ce": [], "late": [], "ce32": [], "late_pre": []}
    from search.text import sentence_spans
    dev_q = [q for q in data["dev"] if len(q["candidates"]) >= 30]
    rr.score(dev_q[0]["query"], [c["text"] for c in dev_q[0]["candidates"][:30]])  # warm
    sentence_rr = SentenceReranker(embedder)
    # The shipped class computes what late_scores() computed for the table.
    check = sentence_rr.score(dev_q[0]["query"], [c["text"] for c in dev_q[0]["candidates"][:depth]])
    assert np.allclose(check, scores["dev"]["late"][data["dev"].index(dev_q[0])], atol=1e-3)
    for q in dev_q:
        texts = [c["text"] for c in q["candidates"][:30]]
        t0 = time.perf_counter()
        rr.score(q["query"], texts)
        lat["ce"].append((time.perf_counter() - t0) * 1000)
        if fp32 is not None:
            t0 = time.perf_counter()
            fp32.score(q["query"], texts)
            lat["ce32"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        sentence_rr.score(q["query"], texts)
        lat["late"].append((time.perf_counter() - t0) * 1000)
        # The same with sentence vectors computed ahead (an ingest-time
        # sentence index): only the question is encoded at query time.
        mats = [embedder.encode([t[a:b] for a, b in sentence_spans(t)] or [t]) for t in texts]
        t0 = time.perf_counter()
        qv = embedder.encode([q["query"]])[0]
        for m in mats:
            c = m @ qv
            _ = c.max() + 0.05 * np.log(np.exp((c - c.max()) / 0.05).sum())
        lat["late_pre"].append((time.perf_counter() - t0) * 1000)

    weights = [float(w) for w in args.weights.split(",")]
    late_ms = round(percentile(lat["late"], 50))
    methods = [("hybrid (first stage)", "hybrid", 0.0, "-", "-"),
               ("late interaction alone (softmax-pooled sentence cosine)", "late", 0.0, late_ms, "0 (bi-encoder)"),
               ("late interaction + 1 x hybrid", "late", 1.0, late_ms, "0 (bi-encoder)")]
    for w in weights:
        label = "cross-encoder int8" if w == 0 else f"cross-encoder int8 + {w:g} x hybrid"
        methods.append((label, "ce", w, round(percentile(lat["ce"], 50)), f"{size_mb:.1f} MB"))
    for key, label, _, mb in extras:
        ms = round(percentile(lat["ce32"], 50)) if key == "ce32" else "-"
        for w in weights:
            methods.append((f"cross-encoder {label}" + ("" if w == 0 else f" + {w:g} x hybrid"), key, w, ms,
                            f"{mb:.1f} MB"))
    rows = []
    results = {}
    for label, m, w, ms, size in methods:
        sf = beir_metrics(data["scifact"], orders(data["scifact"], depth, m, scores["scifact"], w))
        if m not in scores["arguana"] and m != "hybrid":
            ag = ag_drop = "-"
        else:
            ao = orders(data["arguana"], depth, m, scores["arguana"], w)
            ag, ag_drop = beir_metrics(data["arguana"], ao), beir_metrics(data["arguana"], ao, drop_own=True)
        dv = dev_metrics(data["dev"], orders(data["dev"], depth, m, scores["dev"], w))
        results[label] = {"scifact": sf, "arguana": ag, "arguana_drop_own": ag_drop, "dev": dv}
        rows.append((label, sf, ag, ag_drop, dv["plac"][0], dv["plac"][1], dv["seeds"][0], dv["seeds"][1], ms, size))
    full_ag = beir_metrics(full_arguana, orders(full_arguana, depth, "hybrid", {}))
    full_ag_drop = beir_metrics(full_arguana, orders(full_arguana, depth, "hybrid", {}), drop_own=True)

    # Abstention signals: the score of the passage each method puts first.
    # SciFact: does it separate queries whose first passage is relevant from
    # the rest (AUC)? Dev: answerable from unanswerable questions.
    def top_signal(name: str, kind: str):
        out = []
        for i, q in enumerate(data[name]):
            n = min(depth, len(q["candidates"]))
            if not n:
                out.append((0.0, False))
                continue
            if kind == "cosine":
                j, v = 0, q["candidates"][0]["dense"] or 0.0
            elif kind == "late":
                j = int(np.argmax(scores[name]["late"][i][:n]))
                v = float(scores[name]["late"][i][j])
            else:
                j = int(np.argmax(scores[name]["ce"][i][:n]))
                v = float(rr.to_probability(scores[name]["ce"][i][j:j + 1])[0])
            out.append((v, q["candidates"][j].get("gain", 0) > 0 if name != "dev" else bool(q["answers"])))
        return out

    def auc(pairs) -> float | str:
        pos = [v for v, ok in pairs if ok]
        neg = [v for v, ok in pairs if not ok]
        if not pos or not neg:
            return "-"
        return round(float(np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])), 3)

    signals = {"first-stage top-1 cosine": "cosine", "late interaction best score": "late",
               "cross-encoder best probability": "ce"}
    auc_rows = [(label, auc(top_signal("scifact", k)), auc(top_signal("dev", k))) for label, k in signals.items()]
    abst = []
    for label, kind, grid in (("cross-encoder probability", "ce", (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)),
                              ("late interaction score", "late", (0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7))):
        sf_top, dv = top_signal("scifact", kind), top_signal("dev", kind)
        for t in grid:
            rel = [ok for v, ok in sf_top if v >= t]
            abst.append((label, t, round(sum(v < t for v, ok in dv if not ok) / max(1, sum(not ok for _, ok in dv)), 2),
                         round(sum(v < t for v, ok in dv if ok) / max(1, sum(ok for _, ok in dv)), 2),
                         round(sum(v < t for v, _ in sf_top) / len(sf_top), 2),
                         round(sum(rel) / len(rel), 2) if rel else "-"))
    ans = [q for q in data["dev"] if q["answers"]]
    una = [q for q in data["dev"] if not q["answers"]]

    info = rr.info
    body = [machine_line(), "",
            f"Each method reorders the current hybrid top {depth} (default settings; SciFact and ArguAna one passage a "
            f"document as `equisearch eval-beir`). SciFact test: {len(data['scifact'])} queries, nDCG@10. ArguAna test: "
            f"{len(data['arguana'])} of {len(full_arguana)} queries (seeded sample; the hybrid first stage scores "
            f"{full_ag} on all {len(full_arguana)}, {full_ag_drop} without the query's own document), nDCG@10 "
            "as eval-beir counts it and without the query's own document (BEIR's convention). Dev: "
            "shared/dev-eval/plac.jsonl and seeds.jsonl over corpus/ + shared/data/edu_plac "
            f"({sets['dev']['passages']} passages), recall@5 and MRR@5 as search/evaluate.py. Latency: reranking 30 "
            "dev passages for one question, p50 (2 onnxruntime threads; late interaction encodes the passages' "
            "sentences at query time).", "",
            f"Cross-encoder: `{folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder}` "
            f"(`{info['file']}`, sha256 {sha}...), MiniLM-L6 trained by `python -m ingest.rerank_train` "
            f"on {info.get('training_groups')} groups mined from documents ({info.get('steps')} steps, seed "
            f"{info.get('seed')}); no question file or evaluation set was used in training.", "",
            _table(rows, ["method", "SciFact nDCG@10", "ArguAna nDCG@10 (eval-beir)", "ArguAna nDCG@10 (BEIR)",
                          "plac recall@5", "plac MRR", "seeds recall@5", "seeds MRR", "rerank 30 p50 ms",
                          "artifact"]), "",
            *([("Other rows, from `--also` folders (SciFact and dev only): "
                + "; ".join(f"`{Path(spec).name}` = `{OnnxReranker(Path(spec)).info.get('command', '?')}`"
                            for spec in args.also) + ". `fp32` is the shipped model's unquantised export."), ""]
              if args.also else []),
            "Abstention signals: the score of the passage each method ranks first. AUC on SciFact: how well it "
            "separates queries whose first passage is relevant from the rest; on dev: answerable from "
            f"unanswerable questions ({len(ans)} / {len(una)}: too few to settle anything).", "",
            _table(auc_rows, ["signal", "SciFact AUC (top-1 relevant)", "dev AUC (answerable)"]), "",
            "Thresholds (abstain below): share of dev unanswerable / answerable questions abstained, share of "
            "SciFact queries abstained and how often the first passage is relevant among the rest.", "",
            _table(abst, ["signal", "threshold", "dev unanswerable abstained", "dev answerable abstained",
                          "SciFact abstained", "SciFact top-1 relevant when kept"]), "",
            f"Late interaction encodes ~{round(np.median([sum(len(sentence_spans(c['text'])) for c in q['candidates'][:30]) for q in dev_q]))} "
            f"sentences for 30 passages at query time ({round(percentile(lat['late'], 50))} ms p50); with the sentence "
            f"vectors computed at ingest only the question is encoded: {percentile(lat['late_pre'], 50):.1f} ms p50.", "",
            "Scoring time for the whole sets in this run (cross-encoder / late; 0 where cached scores were re-used): "
            + ", ".join(f"{k} {v:.0f} s" for k, v in timing.items()) + "."]
    text = "\n".join(body)
    print(text)
    (cache / "bench_rerank.json").write_text(json.dumps({"results": results, "abstention": abst, "latency": lat}))
    if not args.no_write:
        write_section(Path(args.out), "Reranking", text)


if __name__ == "__main__":
    main()
