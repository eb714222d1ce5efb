"""Written answers with a small model: what survives the check, what it costs (bench/RESULTS.md).

Usage: python bench/bench_written.py [--store-dir DIR] [--limit N]

Starts llama.cpp's OpenAI-compatible server on loopback with SmolLM2-135M-
Instruct (tests/llm_server.py; `make llm` installs it), asks every question
of shared/dev-eval/seeds.jsonl, tests/data/starter_questions.jsonl and
tests/data/blind/starter.jsonl on the starter store (A) and
shared/dev-eval/plac.jsonl and tests/data/blind/plac.jsonl on starter +
edu_plac (B),
once extractive only and once with the writer on, and records:

* how many answers were written (not fallen back) and why the others fell back;
* of the sentences the model wrote, the share that survive the check;
* citations to passages that were not given: found in replies, shown (must be 0);
* added latency per answer (p50/p95 of the with-writer ask minus the extractive ask).

Every surviving sentence is written to bench/written_sample.jsonl with the
titles of the passages it cites (not their text: edu_plac holds two
non-commercial files), for the hand check recorded in RESULTS.md. The
question sets are dev sets; none of the check's thresholds were fitted to them.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_answers import build  # noqa: E402
from bench.common import machine_line, write_section  # noqa: E402

SHARED = ROOT.parent / "shared"
SETS = [("A", SHARED / "dev-eval" / "seeds.jsonl"), ("A", ROOT / "tests" / "data" / "starter_questions.jsonl"),
        ("B", SHARED / "dev-eval" / "plac.jsonl"),
        ("A", ROOT / "tests" / "data" / "blind" / "starter.jsonl"), ("B", ROOT / "tests" / "data" / "blind" / "plac.jsonl")]


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--store-dir", default="/work/benchcache/answers")
    ap.add_argument("--limit", type=int, default=0, help="questions per set (0: all)")
    ap.add_argument("--sample", default=str(ROOT / "bench" / "written_sample.jsonl"))
    ap.add_argument("--write", action="store_true", help="write the section of bench/RESULTS.md")
    ap.add_argument("--from-json", help="write the section from a saved result (bench/written_results.json)")
    args = ap.parse_args()
    if args.from_json:
        write_results(json.loads(Path(args.from_json).read_text()))
        return
    from search.api import Engine
    from search.evaluate import load_eval
    from search.settings import Settings
    from tests.llm_server import MODEL_NAME, start_server, stop_server, unavailable

    if unavailable():
        sys.exit(unavailable())
    url, proc = start_server(Path("/tmp/bench-llm-server.log"))
    try:
        engines = {}
        stats = collections.Counter()
        fallbacks = collections.Counter()
        reasons = collections.Counter()
        added, writer_s, sample = [], [], []
        sets: dict[str, int] = {}
        for store, path in SETS:
            if not path.exists():
                print(f"skipped {path}: not found", flush=True)
                continue
            if store not in engines:
                home = build(Path(args.store_dir), store)
                base = Settings(home=str(home))
                engines[store] = Engine.open(home, replace(base, writer_url=url, writer_model=MODEL_NAME,
                                                          writer_timeout=120))
            engine = engines[store]
            questions = load_eval(path)
            questions = questions[: args.limit] if args.limit else questions
            sets[f"{path.parent.name}/{path.name}"] = len(questions)
            for item in questions:
                q = item.question
                t0 = time.perf_counter()
                plain = engine.ask(q, written=False)
                t1 = time.perf_counter()
                answer = engine.ask(q)
                t2 = time.perf_counter()
                stats["questions"] += 1
                if plain.abstained:
                    stats["abstained (not sent)"] += 1
                    continue
                stats["sent"] += 1
                added.append((t2 - t1) - (t1 - t0))
                writer_s.append(answer.writer_seconds)
                kept = len(answer.sentences) if answer.written else 0
                stats["written"] += answer.written
                stats["sentences kept"] += kept
                stats["sentences dropped"] += len(answer.unsupported)
                stats["citations removed"] += answer.removed_citations
                shown = {n for s in answer.sentences for n in s.cited}
                stats["citations shown outside the passages"] += sum(n < 1 or n > len(answer.passages) for n in shown)
                for _, why in answer.unsupported:
                    reasons[bucket(why)] += 1
                if not answer.written:
                    why = answer.note.split(";")[0].replace("Written answer not available (", "").rstrip(")")
                    fallbacks[re.sub(r"\d+ of its \d+", "N of its M", why)] += 1
                for s in answer.sentences if answer.written else ():
                    sample.append({"set": path.name, "id": item.id, "question": q, "sentence": s.text,
                                   "cites": [{"n": n, "title": answer.passages[n - 1].document.title,
                                              "uri": answer.passages[n - 1].document.uri,
                                              "chunk": answer.passages[n - 1].chunk.id} for n in s.cited]})
                print(f"{path.name} {item.id}: {'written' if answer.written else 'fallback'} kept {kept} "
                      f"dropped {len(answer.unsupported)} {answer.writer_seconds:.1f}s", flush=True)
    finally:
        stop_server(proc)
    Path(args.sample).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in sample))
    written_total = stats["sentences kept"] + stats["sentences dropped"]
    result = {
        "sets": sets, "stats": dict(stats), "load_average": " ".join(f"{x:.1f}" for x in os.getloadavg()),
        "fallbacks": dict(fallbacks), "drop_reasons": dict(reasons),
        "survival": round(stats["sentences kept"] / written_total, 3) if written_total else None,
        "added_latency_s": {"p50": round(statistics.median(added), 2) if added else None,
                            "p95": round(pct(added, 0.95), 2)},
        "writer_s": {"p50": round(statistics.median(writer_s), 2) if writer_s else None,
                     "p95": round(pct(writer_s, 0.95), 2)},
    }
    print(json.dumps(result, indent=2))
    RESULTS_JSON.write_text(json.dumps(result, indent=2))
    if args.write:
        write_results(result)


HAND_CHECK = ROOT / "bench" / "written_handcheck.jsonl"
RESULTS_JSON = ROOT / "bench" / "written_results.json"


def hand_check() -> str:
    """The hand check's summary: bench/written_handcheck.jsonl holds one verdict per sampled sentence.

    Each line: ``{"sentence": ..., "verdict": "contains" | "partly" | "not", "why": ..., "run": ...}``,
    written by a person who read the cited passage (not by this script).
    """
    if not HAND_CHECK.exists():
        return "not done yet (bench/written_handcheck.jsonl is missing)."
    rows = [json.loads(line) for line in HAND_CHECK.read_text().splitlines() if line.strip()]
    sample = {json.loads(line)["sentence"] for line in (ROOT / "bench" / "written_sample.jsonl").read_text().splitlines()
              if line.strip()}
    # The latest reading of each sentence the current sample holds (the file keeps earlier runs' too).
    rows = list({r["sentence"]: r for r in rows if r["sentence"] in sample}.values())
    counts = collections.Counter(r["verdict"] for r in rows)
    final = [r for r in rows if r.get("final_check", "pass") == "pass"]
    after = collections.Counter(r["verdict"] for r in final)
    verdicts = ("contains", "partly", "not")
    out = [f"{len(rows)} sentences read against their cited passages (every survivor: fewer than 50 survived): "
           + ", ".join(f"{v} {counts.get(v, 0)}" for v in verdicts) + "."]
    if len(final) < len(rows):
        out[0] += (f" The check was tightened after this reading (see the notes); {len(final)} of them pass it now: "
                   + ", ".join(f"{v} {after.get(v, 0)}" for v in verdicts) + ".")
    out.append("")
    out += [f"- {r['verdict']}{'' if r.get('final_check', 'pass') == 'pass' else ' (dropped by the final check)'}: "
            f"“{r['sentence']}” ({r['why'].rstrip('.')})" for r in rows]
    return "\n".join(out)


def bucket(reason: str) -> str:
    """A drop reason without its particulars (which number, which name, what share)."""
    if reason.startswith("only "):
        return "too few of its content words are in the cited passage"
    if reason.startswith(("the number ", "a number in it")):
        return "a number in it is not in the cited passage"
    if not reason or reason[0] in "'\"" or reason.endswith("is not in the cited passage"):
        return "a name in it is not in the cited passage"
    if reason.startswith("it only repeats"):
        return "it only repeats the cited source's title"
    if reason.startswith("it says '") and reason.endswith("where the cited passage does not"):
        return "it uses a pronoun, modal or duty word (his, must, responsible, ...) the passage sentence lacks"
    if reason.startswith("it negates"):
        return "it negates what the cited passage says, or drops its 'not'"
    return reason.split(" (")[0]


def _buckets(reasons: dict) -> collections.Counter:
    out = collections.Counter()
    for why, n in reasons.items():
        out[bucket(why)] += n
    return out


def write_results(result: dict) -> None:
    st = result["stats"]
    kept, dropped = st.get("sentences kept", 0), st.get("sentences dropped", 0)
    lines = [
        machine_line(), f"Load average at the end of the run: {result.get('load_average', '-')}.", "",
        "`python bench/bench_written.py --write` (llama.cpp's server, SmolLM2-135M-Instruct Q4_1, temperature 0, "
        "JSON reply asked for, the instruction and worked example of search/written.py; questions: "
        + ", ".join(f"{name} {n}" for name, n in result.get("sets", {}).items())
        + "; shared/dev-eval and tests/data/starter_questions.jsonl on the starter store or starter + edu_plac as "
        "in bench_answers, the blind sets likewise). The check's thresholds were set before the first run and not "
        "fitted to these questions.", "",
        "| figure | value |", "|---|---|",
        f"| questions / sent to the model (abstentions are never sent) | {st.get('questions', 0)} / {st.get('sent', 0)} |",
        f"| answers shown as written | {st.get('written', 0)} |",
        f"| sentences the model wrote (parsed) / survived the check | {kept + dropped} / {kept} "
        f"({result['survival'] if result['survival'] is not None else '-'}) |",
        f"| citations to passages not given: in replies (removed) / shown | {st.get('citations removed', 0)} / "
        f"{st.get('citations shown outside the passages', 0)} |",
        f"| added latency per answer, p50 / p95 s | {result['added_latency_s']['p50']} / {result['added_latency_s']['p95']} |",
        "", "Why answers fell back (count):", "",
        *[f"- {why}: {n}" for why, n in sorted(result["fallbacks"].items(), key=lambda p: -p[1])],
        "", "Why written sentences were left out (count):", "",
        *[f"- {why}: {n}" for why, n in sorted(_buckets(result["drop_reasons"]).items(), key=lambda p: -p[1])],
        "",
        "Hand check of surviving sentences (does the cited passage really contain the claim?): "
        + ("none survived, so there was nothing to check; the sample file bench/written_sample.jsonl is empty."
           if not kept else hand_check()),
    ]
    if result.get("notes"):
        lines += ["", "Notes: " + result["notes"]]
    write_section(ROOT / "bench" / "RESULTS.md", "Written answers (SmolLM2-135M)", "\n".join(lines))


if __name__ == "__main__":
    main()
