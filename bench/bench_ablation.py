"""What each query and answer feature of this release is worth, on the TUNING question sets only: bench/QUALITY.md.

Each row turns one feature off (all else at the defaults) and scores every
question of the sets used while tuning (shared/dev-eval, tests/data/*.jsonl)
through `search.evaluate`, pooled. The held-out sets (tests/data/blind/) are
never read here: choosing features on them would make them tuning sets.

    python bench/bench_ablation.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_answers import SHARED, TUNING, build  # noqa: E402
from bench.common import machine_line, write_section  # noqa: E402

VARIANTS = [
    ("defaults", {}, True),
    ("document_weight 0 (a passage scored alone)", {"document_weight": 0.0}, True),
    ("named_document_boost 0 (no named documents)", {"named_document_boost": 0.0}, True),
    ("correct_spelling 0", {"correct_spelling": 0}, True),
    ("without the sentence after the best one", {}, False),
]


def main() -> None:
    if not SHARED.is_dir():
        sys.exit("needs ../shared beside the checkout (the stores are built from shared/data)")
    import search.answer as answer
    from search.api import Engine
    from search.evaluate import evaluate, load_eval
    from search.settings import Settings

    store_dir = Path("/work/benchcache/answers")
    homes = {}
    rows = []
    for label, override, follow in VARIANTS:
        answer.FOLLOW_BEST = follow
        t = {"n": 0, "useful": 0, "exact": 0, "hit": 0, "rr": 0.0, "wrong": 0, "un": 0, "un_abst": 0}
        for store, path in TUNING:
            if not path.exists():
                continue
            if store not in homes:
                homes[store] = build(store_dir, store)
            engine = Engine.open(homes[store], Settings(home=str(homes[store])).with_(**override))
            for p in evaluate(engine, load_eval(path), k=5)["per_question"]:
                if p["answerable"]:
                    t["n"] += 1
                    t["useful"] += p["useful"]
                    t["exact"] += p["exact"]
                    t["hit"] += p["hit"]
                    t["rr"] += 1 / p["rank"] if p["rank"] else 0.0
                    t["wrong"] += p["abstained"]
                else:
                    t["un"] += 1
                    t["un_abst"] += p["abstained"]
            engine.close()
        n = t["n"]
        rows.append((label, n, round(t["useful"] / n, 3), round(t["exact"] / n, 3), round(t["hit"] / n, 3),
                     round(t["rr"] / n, 3), round(t["wrong"] / n, 3), round(t["un_abst"] / max(1, t["un"]), 3)))
        print(rows[-1], flush=True)
    answer.FOLLOW_BEST = True
    body = [machine_line(), "",
            "Pooled over the question sets used while tuning (dev-eval/seeds.jsonl and plac.jsonl, "
            "tests/data/starter_questions.jsonl, edu_questions.jsonl, teacher_questions.jsonl) on the stores of "
            "bench_answers.py; the held-out sets are not read. One feature off per row. "
            "`python bench/bench_ablation.py` reproduces it.", "",
            "| variant | answerable | useful | exact | recall@5 | MRR | answerable wrongly abstained | unanswerable abstained |",
            "|---|---|---|---|---|---|---|---|"]
    body += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    write_section(ROOT / "bench" / "QUALITY.md", "Ablations on the tuning sets (2026-12-02 defaults)", "\n".join(body))


if __name__ == "__main__":
    main()
