"""Same behaviour after a refactor: every hit and answer on the bench stores, compared with a saved run.

Usage:
    python bench/bench_same_answers.py --save BEFORE.json    # on the old code
    python bench/bench_same_answers.py --compare BEFORE.json # on the new code

Asks every question of the tuning and held-out sets (bench_answers.py's
stores A, B, C, built by that script) through the library, and keeps, per
question, the ranked passage ids and scores of ``search`` and the sentences,
citations and abstention of ``ask``. ``--compare`` prints only how many
questions differ (never a held-out question or its answer, so nobody tunes
to them) and exits 1 when any does.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_answers import HELD_OUT, TUNING  # noqa: E402


def snapshot(store_dir: Path) -> dict:
    from search.api import Engine
    from search.evaluate import load_eval

    out = {}
    engines = {}
    for store, path in [*TUNING, *HELD_OUT]:
        if store not in engines:
            engines[store] = Engine.open(store_dir / store)
        engine = engines[store]
        for item in load_eval(path):
            hits = engine.search(item.question, k=10).hits
            answer = engine.ask(item.question, k=5)
            out[f"{store}:{path.name}:{item.question}"] = {
                "hits": [h.chunk.id for h in hits],
                "scores": [round(float(h.score), 5) for h in hits],
                "abstained": answer.abstained,
                "answer": [s.text for s in answer.sentences],
                "refs": [s.ref for s in answer.sentences],
            }
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store-dir", type=Path, default=Path("/work/benchcache/answers"))
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--save", type=Path, help="write this run to a file (keep it outside the repo)")
    group.add_argument("--compare", type=Path, help="compare this run with a saved one")
    args = ap.parse_args()
    now = snapshot(args.store_dir)
    if args.save:
        args.save.write_text(json.dumps(now, sort_keys=True))
        print(f"{len(now)} questions saved to {args.save}")
        return 0
    before = json.loads(args.compare.read_text())
    differ = sum(before.get(key) != value for key, value in now.items())
    missing = len(set(before) - set(now))
    print(f"{len(now)} questions: {differ} differ, {missing} no longer asked")
    return 1 if differ or missing else 0


if __name__ == "__main__":
    sys.exit(main())
