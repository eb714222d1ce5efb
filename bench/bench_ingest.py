"""Ingest throughput against the raw model, fp32 and bf16, in one run.

Usage: python bench/bench_ingest.py [--dirs a,b,c] [--out bench/RESULTS.md]

Ingests real documents from ../shared/data/edu (default: the DfE govspeak
guidance, the Ofsted HTML pages and the Ofsted children's-services PDFs: all
three parsers) into fresh stores, end to end (read, parse, clean, chunk,
embed, write SQLite + FTS5 + FAISS), once with the fp32 model and once with
bf16 where the CPU has it; then encodes the very same passage texts with the
bare sentence-transformers model (fp32 and bf16, batch 32) as the ceiling.
Ratios compare figures from this one run. Finally re-ingests the unchanged
folder and counts the passages encoded (must be 0). Rewrites the "Ingest"
section of RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_line, write_section  # noqa: E402

EDU = ROOT.parent / "shared" / "data" / "edu"
DIRS = "dfe_remote_education_2020,html_ofsted_overview_pages,ofsted_ilacs_childrens_services"


class Counting:
    """Wraps an embedder and counts what it encodes."""

    def __init__(self, inner):
        self.inner, self.name, self.encoded = inner, inner.name, 0

    @property
    def dim(self):
        return self.inner.dim

    def encode(self, texts, *, batch_size=32):
        self.encoded += len(texts)
        return self.inner.encode(texts, batch_size=batch_size)


def ingest(paths, embedder, settings, tmp: Path):
    from ingest.pipeline import Ingestor
    from search.store import Store

    store = Store.open(tmp)
    t0 = time.perf_counter()
    report = Ingestor(store, settings, embedder).ingest_paths(paths)
    secs = time.perf_counter() - t0
    return store, report, secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dirs", default=DIRS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "RESULTS.md"))
    args = ap.parse_args()
    paths = [EDU / d for d in args.dirs.split(",")]
    missing = [p for p in paths if not p.exists()]
    if missing:
        sys.exit(f"missing {missing}: ../shared/data/edu is needed")

    from search.cpu import cpu_has_bf16
    from search.embedding import load_embedder
    from search.settings import Settings

    fp32 = load_embedder()
    fp32.encode(["warm up"])
    bf16 = load_embedder(bf16=True) if cpu_has_bf16() else None
    if bf16:
        bf16.encode(["warm up"])
    settings = Settings(query_encoder="torch")  # no ONNX export inside the timed ingest
    rows = []
    with tempfile.TemporaryDirectory(dir="/work/benchcache" if Path("/work/benchcache").exists() else None) as tmp:
        store, report, e2e_fp32_s = ingest(paths, fp32, settings, Path(tmp) / "fp32")
        n = report.passages
        texts = [r[0] for r in store.conn.execute("SELECT text FROM chunks ORDER BY id")]
        t0 = time.perf_counter()
        fp32.encode(texts, batch_size=32)
        raw_fp32_s = time.perf_counter() - t0
        e2e_bf16_s = raw_bf16_s = None
        if bf16:
            _s, rep16, e2e_bf16_s = ingest(paths, bf16, settings, Path(tmp) / "bf16")
            assert rep16.passages == n
            t0 = time.perf_counter()
            bf16.encode(texts, batch_size=32)
            raw_bf16_s = time.perf_counter() - t0
        counting = Counting(fp32)
        _s, again, again_s = ingest(paths, counting, settings, Path(tmp) / "fp32")
    raw = n / raw_fp32_s
    rows.append(("documents / passages", f"{report.counts['added']} / {n}", ""))
    rows.append(("raw encode, fp32 sentence-transformers (passages/s)", f"{raw:.1f}", "the ceiling (1.00x)"))
    rows.append(("end-to-end ingest, fp32 (passages/s)", f"{n / e2e_fp32_s:.1f}",
                 f"**{(n / e2e_fp32_s) / raw:.2f}x** raw fp32 (target >= 0.9x)"))
    if bf16:
        rows.append(("raw encode, bf16 (passages/s)", f"{n / raw_bf16_s:.1f}", f"{(n / raw_bf16_s) / raw:.2f}x raw fp32"))
        rows.append(("end-to-end ingest, bf16 (default here: ingest_bf16=auto) (passages/s)", f"{n / e2e_bf16_s:.1f}",
                     f"**{(n / e2e_bf16_s) / raw:.2f}x** raw fp32 (target >= 1.5x)"))
    else:
        rows.append(("bf16", "not available on this CPU", ""))
    rows.append(("re-ingest unchanged: passages encoded / seconds", f"{counting.encoded} / {again_s:.1f}",
                 f"{again.counts['unchanged']} unchanged"))
    lines = [machine_line(), "",
             f"Data: `shared/data/edu/{{{args.dirs}}}` (govspeak, HTML, PDF). End to end = read + parse + clean + "
             "chunk + embed + write (SQLite, FTS5, FAISS), one process.", "",
             "| measure | value | ratio |", "|---|---|---|"] + [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text = "\n".join(lines)
    print(text)
    write_section(Path(args.out), "Ingest", text)


if __name__ == "__main__":
    main()
