"""The scripting API: open a store, search it, ask it.

::

    from search import Engine
    engine = Engine.open("data")                  # or Engine.open() for EQUISEARCH_HOME
    for hit in engine.search("pupil premium", k=5).hits:
        print(hit.citation.title, hit.citation.location, hit.chunk.text[:80])
    answer = engine.ask("what works for PLAC pupils?")
    print(answer.text)

An ``Engine`` holds one store, its vector index and the embedder. It is safe
to share between threads (the UI keeps one per server process) and notices
writes made by other processes through the store's generation counter.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from . import intent, spelling
from .answer import Question, compose_answer
from .embedding import Embedder, load_embedder, query_embedder
from .errors import EquisearchError, ModelError, QueryError
from .hybrid import Candidate, convex_fusion, diversify, reciprocal_rank_fusion
from .lexical import STOPWORDS, keyword_terms, query_terms
from .settings import Settings
from .store import StoreBackend, is_database_url, open_store
from .types import Answer, Citation, Filters, Hit
from .vocabulary import Expansion, load_vocabulary

log = logging.getLogger(__name__)

#: Queries longer than this are cut: nobody types more, and FTS5/encoders
#: would only spend time on it.
MAX_QUERY_CHARS = 2000
MODES = ("hybrid", "dense", "bm25")
#: Most passages of one source in the answer to a "what works" question.
WHAT_WORKS_PER_DOC = 2
#: Stores smaller than this do not treat "no passage has this word" as a
#: sign that a question is off topic (see Engine.ask).
UNSEEN_MIN_PASSAGES = 2000
#: Pseudo-passages added to IDF counts (see _idf).
IDF_PRIOR_PASSAGES = 1000
_SURROGATES = re.compile("[\ud800-\udfff]")
_UNSET = object()

#: Most passages a keyword query may make FTS5 score. FTS5 computes BM25 for
#: every row an OR query matches (~1-4 us a row on a quiet machine here): in
#: a 100k-chunk store a query of common words took 15 ms p50 / 53 ms p95.
#: Above this budget the commonest query words are left out of the keyword
#: query (the rarest always stays); they carry the least BM25 weight
#: anyway, and the dense side still reads the whole query. The price is a
#: hybrid top-10 that differs from the all-words one; bench/RESULTS.md
#: measures the trade-off (100k chunks, 100 Reuters title queries, search
#: p50: 2000 rows -> overlap 0.63 at 9.8 ms; 5000 -> 0.74 at 13.4 ms; 10000
#: -> 0.87 at 15.6 ms; at 1M 5000 gave 0.53 at 22.5 ms and 10000 0.61 at
#: 29.2 ms, at the 30 ms target).
#: A query word found in the titles of at most this many documents names them
#: (a local authority, a school, a programme); a commoner title word ("pupil",
#: "guidance") names nothing.
NAMED_MAX_DOCUMENTS = 2
#: ... and written with a capital at least this often inside those documents' sentences.
NAMED_CAPITAL_SHARE = 0.8
#: Passages of a named document searched besides the global top n.
NAMED_CANDIDATES = 20
LEXICAL_ROW_BUDGET = 5_000
#: ... and only stores above this many passages are budgeted: below it FTS5
#: is fast enough, and keyword ranking (and every quality figure measured on
#: SciFact and the edu questions) stays exactly as it was.
LEXICAL_BUDGET_FROM = 50_000


@dataclass(frozen=True)
class Query:
    """A query read once: cleaned (and spelling-corrected) text, its vector,
    its vocabulary expansion and its words (``words``: with stopwords, in
    order; ``terms``: without them), so no later step tokenises it again."""

    text: str
    vector: np.ndarray | None
    expansion: Expansion
    words: tuple[str, ...]
    terms: tuple[str, ...]


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: tuple[Hit, ...]
    also_searched: tuple[str, ...] = ()
    elapsed_ms: float = 0.0


class Engine:
    """Search and answers over one store."""

    def __init__(self, store: StoreBackend, settings: Settings, embedder: Embedder | None = None):
        self.store = store
        self.settings = settings
        self.index = store.vector_index(settings)
        self._embedder = embedder
        self._reranker = _UNSET
        self._ranker = _UNSET
        self._support = None
        self._sentences = SentenceCache(lambda: self.embedder)

    @classmethod
    def open(
        cls,
        home: str | Path | None = None,
        settings: Settings | None = None,
        *,
        embedder: Embedder | None = None,
        create: bool = False,
        model: str | None = None,
    ) -> "Engine":
        """Open the store at ``home`` (default: ``settings.home_path``) for every edge alike.

        ``model`` is the model the user asked for by name (the CLI's
        ``--model``, ``EQUISEARCH_MODEL``); queries are always encoded by the
        model that built the store, so asking for another one raises
        :class:`~search.errors.StoreMismatch` (the store's one compatibility
        check) rather than searching with vectors of the wrong model. None
        (the default): search with the store's own model.
        """
        settings = settings or Settings.from_env()
        location = home if home is not None else settings.location
        if not is_database_url(location):
            location = Path(location)
        store = open_store(location, create=create, settings=settings)
        try:
            store.check_compatible(model)
        except BaseException:
            store.close()
            raise
        return cls(store, settings, embedder)

    @property
    def reranker(self):
        """The second stage (:mod:`search.rerank`), or None when it is off or cannot load.

        Loaded once per process. A reranker that cannot load is logged and
        left out: search still works on the first stage alone.
        """
        if self._reranker is _UNSET:
            self._reranker = None
            spec = (self.settings.reranker or "").strip()
            if spec.lower() not in ("off", "0", "none", ""):
                try:
                    from .rerank import load_reranker

                    self._reranker = load_reranker(spec)
                except EquisearchError as exc:
                    log.warning("reranker %r not used: %s", spec, exc)
        return self._reranker

    @property
    def ranker(self):
        """The learned ranker (:mod:`search.ltr`), or None when it is off or cannot load (logged)."""
        if self._ranker is _UNSET:
            self._ranker = None
            spec = (self.settings.ranker or "").strip()
            if spec.lower() not in ("off", "0", "none", ""):
                from .ltr import BUNDLED, LearnedRanker

                try:
                    self._ranker = LearnedRanker(BUNDLED if spec.lower() == "bundled" else spec)
                except EquisearchError as exc:
                    log.warning("ranker %r not used: %s", spec, exc)
        return self._ranker

    @property
    def embedder(self) -> Embedder:
        """The query encoder: the model that built the store, whatever the settings say.

        Queries must be encoded by the same model as the passages; the model
        recorded in the store wins over ``settings.model``.
        """
        if self._embedder is None:
            # onnxruntime when the store's exported encoder is there (no torch
            # import: fast cold start), sentence-transformers otherwise.
            model = self.store.get_meta("model") or self.settings.model
            self._embedder = query_embedder(
                self.store.path, model, self.settings.query_encoder,
                dim=int(self.store.get_meta("dim", "0") or 0), fallback=lambda: load_embedder(model),
            )
        return self._embedder

    def encode_query(self, text: str) -> np.ndarray:
        return self.embedder.encode([text])[0]

    def vocabulary(self):
        """The vocabulary in force: built-in + the store's file + the user's file."""
        store_file = self.store.path / "vocabulary.json"
        return load_vocabulary(str(store_file) if store_file.exists() else "", self.settings.vocabulary)

    def _spelling(self, query: str) -> list[tuple[str, str]]:
        """Typing slips in ``query`` and the store's words one edit away (:mod:`search.spelling`)."""
        try:
            from .embedding import resolve_model

            model = self.store.get_meta("model") or self.settings.model
            words = spelling.model_word_list(resolve_model(model))
        except EquisearchError:
            words = ""
        extra = tuple(f for t in self.vocabulary().terms for f in t.forms)
        return spelling.corrections(query, self.store.term_doc_counts, words, extra)

    def expand(self, query: str) -> Expansion:
        """Vocabulary expansion of ``query`` (built-in + store + user file)."""
        if not self.settings.expand_queries:
            return Expansion()
        return self.vocabulary().expand(query)

    def _prepare(self, query: str, encode: bool = True) -> Query:
        """Clean the query, expand it, tokenise it and encode it (with its synonyms) once."""
        query = _clean_query(query)
        fixes = self._spelling(query) if self.settings.correct_spelling else []
        if fixes:
            query = spelling.apply(query, fixes)
        expansion = self.expand(query)
        if fixes:
            expansion = dataclasses.replace(expansion, corrections=tuple(fixes))
        every = tuple(query_terms(query, keep_stopwords=True))
        vector = self.encode_query(_with_synonyms(query, expansion)) if encode else None
        return Query(query, vector, expansion, every, tuple(w for w in every if w not in STOPWORDS))

    # -- search ----------------------------------------------------------
    def search(
        self, query: str, k: int | None = None, filters: Filters | None = None, *, mode: str = "hybrid"
    ) -> SearchResult:
        """Hybrid search: dense + keyword, fused by rank, diversified.

        ``mode`` is ``hybrid`` (default), ``dense`` (vectors only) or ``bm25``
        (keywords only, no model needed). Raises :class:`QueryError` for an
        empty query.
        """
        if mode not in MODES:
            raise QueryError(f"unknown search mode {mode!r}: use one of {', '.join(MODES)}")
        t0 = time.perf_counter()
        # One consistent state while an ingest commits, and on PostgreSQL one
        # pooled connection for the whole search (the spelling check's reads too).
        with self.store.consistent_view():
            q = self._prepare(query, encode=mode != "bm25")
            hits = self._search_vec(q, k or self.settings.top_k, filters, mode=mode)
        return SearchResult(q.text, tuple(hits), q.expansion.shown, (time.perf_counter() - t0) * 1000)

    def _search_vec(
        self,
        q: Query,
        k: int,
        filters: Filters | None,
        *,
        mode: str = "hybrid",
        per_doc_limit: int | None = None,
        features_only: bool = False,
    ) -> list[Hit]:
        """The first stage, the learned ranker and the reranker where set, diversified to ``k`` hits.

        ``features_only`` (training, :mod:`ingest.ranker_train`): stop before
        ranking and return the fused candidates the ranker would reorder, their
        chunks and their feature rows.
        """
        s = self.settings
        qvec, expansion = q.vector, q.expansion
        allowed = None
        if filters is not None and not filters.is_empty():
            allowed = self.store.chunk_ids_matching(filters)
        dense = [] if mode == "bm25" else self.index.search(qvec, max(s.dense_candidates, k), allowed)
        named = self.named_documents(q.terms) if s.named_document_boost > 0 else set()
        own = self.store.chunk_ids_of(named) if named else np.zeros(0, dtype=np.int64)
        if named and qvec is not None:
            # The named document's best passages join the candidates even when
            # a long guidance document outranks all of them globally.
            seen = {cid for cid, _ in dense}
            in_scope = own if allowed is None else np.intersect1d(own, allowed)
            dense += [(cid, sc) for cid, sc in self.index.search(qvec, NAMED_CANDIDATES, in_scope) if cid not in seen]
            dense.sort(key=lambda p: -p[1])
        terms = keyword_terms(self._affordable_terms(q), expansion.synonyms + expansion.related)
        n_lex = max(s.lexical_candidates, k)
        lexical: list[tuple[int, float]] = []
        dense_bm25: dict[int, float] | None = None  # None: no keyword query
        if terms and mode == "hybrid":
            # The keyword top-n and the BM25 of every vector hit, in one pass.
            lexical, dense_bm25 = self.store.keyword_scores(
                terms, n_lex, [cid for cid, _ in dense], filters, title_weight=s.title_weight)
        elif terms and mode == "bm25":
            lexical = self.store.keyword_search(terms, n_lex, filters, title_weight=s.title_weight)
        if mode == "hybrid":
            dense, lexical = self._complete_scores(dense, lexical, qvec, dense_bm25)
        cosine = dict(dense)
        if dense and s.document_weight > 0:
            dense = self._with_document_scores(dense, qvec)
        if s.fusion == "convex":
            fused = convex_fusion(dense, lexical, dense_weight=s.dense_weight, lexical_weight=s.lexical_weight)
        else:
            fused = reciprocal_rank_fusion(
                dense, lexical, rrf_k=s.rrf_k, dense_weight=s.dense_weight, lexical_weight=s.lexical_weight
            )
        for c in fused:  # what the vectors said about the passage itself (shown as "dense")
            if c.chunk_id in cosine:
                c.dense = cosine[c.chunk_id]
        if named:
            of_named = {int(c) for c in own}
            for c in fused:
                if c.chunk_id in of_named:
                    c.score += s.named_document_boost
            fused.sort(key=lambda c: (-c.score, c.dense_rank or 10**9, c.chunk_id))
        # Look at enough fused candidates to fill k after limits/collapse.
        reranker = self.reranker if mode == "hybrid" else None
        ranker = self.ranker if mode == "hybrid" and not features_only else None
        if ranker is not None and not ranker.applies_to(q.text):
            # A query longer than any training question keeps the first
            # stage's order: both second stages learnt from such questions.
            ranker = reranker = None
        pool = fused[: max(4 * k, 20, s.rerank_candidates if reranker else 0,
                           s.ranker_candidates if ranker is not None or features_only else 0)]
        chunks = self.store.chunks_by_ids([c.chunk_id for c in pool])
        pool = [c for c in pool if c.chunk_id in chunks]
        if (ranker is not None or features_only) and pool:
            head = pool[: s.ranker_candidates]
            x = self._rank_features(q, head, chunks, dict(lexical), frozenset(int(c) for c in own))
            if features_only:
                return head, chunks, x
            scores = ranker.score(x)
            from .ltr import order

            best = order(scores)
            pool = [head[i] for i in best] + pool[len(head):]
            ranked = [float(scores[i]) for i in best]
        else:
            ranked = None
        if reranker is not None and pool:
            pool = self._rerank(reranker, _with_synonyms(q.text, expansion), pool, chunks, ranked)
        chosen = diversify(
            pool,
            {cid: ch.doc_id for cid, ch in chunks.items()},
            {cid: ch.text for cid, ch in chunks.items()},
            k=k,
            per_doc_limit=s.per_doc_limit if per_doc_limit is None else per_doc_limit,
        )
        if qvec is not None:
            self._fill_dense_scores(chosen, chunks, qvec)
        docs = self.store.documents_by_ids(chunks[c.chunk_id].doc_id for c in chosen)
        hits = []
        for c in chosen:
            ch = chunks[c.chunk_id]
            doc = docs[ch.doc_id]
            hits.append(
                Hit(
                    chunk=ch,
                    document=doc,
                    citation=Citation.for_chunk(doc, ch),
                    score=c.score,
                    dense=c.dense,
                    dense_rank=c.dense_rank,
                    lexical_rank=c.lexical_rank,
                    relevance=c.relevance,
                )
            )
        return hits

    def _rank_features(self, q: Query, head: list[Candidate], chunks, bm25: dict[int, float],
                       named: frozenset[int]) -> np.ndarray:
        """:func:`search.ltr.all_features` of the fused candidates ``head``."""
        from .ltr import QUANTITY_QUESTION, RankContext, all_features, specific_words

        asked = intent.detect(q.text)
        known = self.vocabulary().acronyms
        ctx = RankContext(
            terms=q.terms, weights=self.term_weights(q.terms), kind=asked.kind, wants_list=asked.wants_list,
            specific=specific_words(q.text, known, STOPWORDS), bm25=bm25, named=named,
            quantity=bool(QUANTITY_QUESTION.search(q.text)),
            acronyms=frozenset(t for t in q.terms if t in known or t.rstrip("s") in known),
            alternatives=q.expansion.synonyms + q.expansion.related,
        )
        docs = self.store.documents_by_ids({chunks[c.chunk_id].doc_id for c in head})
        texts = [chunks[c.chunk_id].text for c in head]
        titles = [docs[chunks[c.chunk_id].doc_id].title for c in head]
        kinds = [docs[chunks[c.chunk_id].doc_id].kind for c in head]
        return all_features(ctx, head, texts, titles, kinds)

    def model_query(self, query: str) -> str:
        """``query`` as the reranker reads it: with its vocabulary synonyms in brackets."""
        return _with_synonyms(query, self._prepare(query).expansion)

    def ranking_candidates(self, query: str, filters: Filters | None = None):
        """What the learned ranker reads for ``query``: (candidates, chunks by id, feature rows).

        For training and measuring it (:mod:`ingest.ranker_train`); the
        first stage as search runs it, before any second stage.
        """
        with self.store.consistent_view():
            q = self._prepare(query)
            return self._search_vec(q, self.settings.top_k, filters, features_only=True)

    def _with_document_scores(self, dense: list[tuple[int, float]], qvec: np.ndarray) -> list[tuple[int, float]]:
        """Blend each passage's cosine with its document's (``document_weight``), best first.

        A document is ranked by more than its single closest passage: on
        ArguAna (abstracts cut into 2-3 passages) best-passage scoring lost
        to embedding each document whole, and the blend recovers most of it
        while keeping passage-level citations. Document vectors are averaged
        from the stored passage vectors and cached until the store changes.
        """
        w = self.settings.document_weight
        doc_of = self.store.doc_ids_of([cid for cid, _ in dense])
        gen = self.store.generation()
        if getattr(self, "_docvec_gen", None) != gen or len(self._docvecs) > 50_000:
            self._docvecs, self._docvec_gen = {}, gen
        missing = {d for d in doc_of.values() if d not in self._docvecs}
        if missing:
            self._docvecs.update(self.store.document_vectors(missing))
        out = []
        for cid, cos in dense:
            dv = self._docvecs.get(doc_of.get(cid))
            out.append((cid, cos if dv is None else (1 - w) * cos + w * float(dv @ qvec)))
        out.sort(key=lambda p: -p[1])
        return out

    def named_documents(self, query: str | Sequence[str]) -> set[int]:
        """Documents the query names by a word that is rare among titles.

        "What did Ofsted find in Gloucestershire?" names the Gloucestershire
        inspection report: its passages are searched even when other reports
        rank above them, and they get ``named_document_boost``. A word names
        documents only when it is in at most :data:`NAMED_MAX_DOCUMENTS`
        titles and the store has more documents than that, so title words
        shared by a corpus ("inspection", "children") name nothing.
        ``query`` is the text or its content words (:func:`query_terms`).
        """
        by_word = self._title_words()
        if len(self._title_docs) <= NAMED_MAX_DOCUMENTS:
            return set()
        terms = query_terms(query) if isinstance(query, str) else query
        words = {w: by_word[w] for w in terms
                 if len(by_word.get(w, ())) in range(1, NAMED_MAX_DOCUMENTS + 1) and len(w) >= 4 and not w.isdigit()}
        if not words:
            return set()
        named: set[int] = set()
        for w, docs in words.items():
            if self._is_name(w, frozenset(docs)):
                named |= docs
        return named

    def _is_name(self, word: str, docs: frozenset[int]) -> bool:
        """Is ``word`` a proper name in these documents' own text?

        A name ("Gloucestershire", "Surrey", "Wolverhampton") is written with
        a capital inside sentences; a topic word of a title ("suspension",
        "guidance", "pupil") is not. Judged from up to 20 passages that use
        the word, and cached until the store changes.
        """
        cache = self.__dict__.setdefault("_name_cache", {})
        key = (word, docs, self.store.generation())
        if key not in cache:
            mid, capital = 0, 0
            pattern = re.compile(rf"\b({re.escape(word)}\w*)", re.I)
            for text in self.store.texts_mentioning(word, docs):
                for m in pattern.finditer(text):
                    before = text[:m.start()].rstrip()
                    if not before or before[-1] in ".!?:;•\n\"'‘“(":
                        continue  # a sentence start says nothing about case
                    mid += 1
                    capital += m.group(1)[0].isupper()
            cache[key] = mid >= 2 and capital >= NAMED_CAPITAL_SHARE * mid
            if len(cache) > 10_000:
                cache.clear()
        return cache[key]

    def _title_words(self) -> dict[str, set[int]]:
        """Title word -> documents, rebuilt when the store changes."""
        gen = self.store.generation()
        if getattr(self, "_titles_gen", None) != gen:
            by_word: dict[str, set[int]] = {}
            docs = set()
            for doc_id, title in self.store.titles():
                docs.add(doc_id)
                for w in query_terms(title):
                    by_word.setdefault(w, set()).add(doc_id)
            self._title_index, self._title_docs, self._titles_gen = by_word, docs, gen
        return self._title_index

    def _rerank(self, reranker, query: str, pool: list[Candidate], chunks,
                ranked: list[float] | None = None) -> list[Candidate]:
        """Order the best candidates by the reranker, blended with the score that ordered them.

        That score is the learned ranker's (``ranked``, best first, when it
        ordered the pool) or else the fused one. Both are min-max normalised
        over the ``rerank_candidates`` read; ``rerank_weight`` of the final
        score is the reranker's. Each candidate keeps its reranker
        probability (``relevance``).
        """
        head = pool[: self.settings.rerank_candidates]
        scores = reranker.score(query, [chunks[c.chunk_id].text for c in head])
        probs = reranker.to_probability(scores)
        w = self.settings.rerank_weight
        if ranked is not None and len(ranked) >= len(head):
            first = np.asarray(ranked[: len(head)], dtype=np.float32)
        else:
            first = np.asarray([c.score for c in head], dtype=np.float32)
        final = w * _minmax(scores) + (1 - w) * _minmax(first)
        for c, f, p in zip(head, final, probs):
            c.score, c.relevance = float(f), float(p)
        head.sort(key=lambda c: -c.score)
        return head + pool[len(head):]

    def _complete_scores(
        self,
        dense: list[tuple[int, float]],
        lexical: list[tuple[int, float]],
        qvec: np.ndarray,
        dense_bm25: dict[int, float] | None,
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Score every candidate of either list on both scales.

        Each retriever only returns its own top n, so a passage ranked 4th by
        keywords but 85th by vectors would otherwise count as "not similar at
        all" in fusion. Its cosine comes from its stored vector, and a vector
        hit's BM25 (``dense_bm25``) from the same FTS5 pass that ranked the
        keyword hits: both cheap (tens of passages), and fusion then compares
        like with like. A passage that contains none of the query's words
        keeps BM25 0; with no keyword query (``dense_bm25`` None) the keyword
        list stays as it is.
        """
        d_ids = {cid for cid, _ in dense}
        l_ids = {cid for cid, _ in lexical}
        missing_vec = [cid for cid in l_ids - d_ids]
        if missing_vec and qvec is not None:
            vecs = self.store.vectors_by_ids(missing_vec)
            dense = dense + [(cid, float(v @ qvec)) for cid, v in vecs.items()]
            dense.sort(key=lambda p: -p[1])
        missing_lex = [cid for cid in d_ids - l_ids]
        if missing_lex and dense_bm25 is not None:
            lexical = lexical + [(cid, dense_bm25.get(cid, 0.0)) for cid in missing_lex]
            lexical.sort(key=lambda p: -p[1])
        return dense, lexical

    def _affordable_terms(self, q: Query) -> list[str]:
        """The query's words, without its commonest ones when they would cost too much.

        A query made only of stopwords ("what is it?") keeps them: it still
        deserves an attempt. Words are kept rarest first while the passages
        they match add up to at most :data:`LEXICAL_ROW_BUDGET`; see there.
        """
        terms = list(q.terms or q.words)
        if len(terms) < 2 or self.index.ntotal <= max(LEXICAL_ROW_BUDGET, LEXICAL_BUDGET_FROM):
            return terms
        counts = self.store.term_doc_counts(terms)
        keep, spent = [], 0
        for term in sorted(terms, key=lambda t: counts.get(t, 0)):
            if keep and spent + counts.get(term, 0) > LEXICAL_ROW_BUDGET:
                break
            keep.append(term)
            spent += counts.get(term, 0)
        if len(keep) < len(terms):
            log.debug("keyword query %r: left out common %s", q.text, [t for t in terms if t not in keep])
        return [t for t in terms if t in keep]

    def _fill_dense_scores(self, chosen: list[Candidate], chunks, qvec: np.ndarray) -> None:
        """Give keyword-only hits their cosine too, from the stored vectors."""
        missing = [c for c in chosen if c.dense is None]
        if not missing:
            return
        vecs = self.store.vectors_by_ids([c.chunk_id for c in missing])
        for c in missing:
            if c.chunk_id in vecs:
                c.dense = float(vecs[c.chunk_id] @ qvec)

    # -- ask -------------------------------------------------------------
    def ask(self, question: str, k: int | None = None, filters: Filters | None = None,
            written: bool | None = None) -> Answer:
        """An extractive answer with [n] citations, or an abstention.

        With ``writer_url`` set (or ``written`` True and a URL set) the
        answer is written by that endpoint's model and checked sentence by
        sentence (:mod:`search.written`); ``written=False`` keeps it
        extractive. Any failure of the endpoint gives the extractive answer
        with a one-line ``note``.
        """
        answer = self._extractive(question, k, filters)
        if (written is None or written) and self.settings.writer_url.strip():
            from .written import write_answer

            return write_answer(answer, self.settings, self.support_check())
        return answer

    def support_check(self):
        """The check of written sentences (:class:`search.written.SupportCheck`), made once.

        It uses the bundled relevance model when it is present and loads;
        otherwise the lexical and sentence-similarity checks alone (logged).
        """
        if self._support is None:
            from .rerank import BUNDLED_DIR, load_reranker
            from .written import SupportCheck

            reranker = None
            if (BUNDLED_DIR / "reranker.json").is_file():
                try:
                    reranker = load_reranker("bundled")
                except ModelError as exc:
                    log.warning("written answers checked without the relevance model: %s", exc)
            self._support = SupportCheck(self._sentences, self.settings, reranker)
        return self._support

    def _extractive(self, question: str, k: int | None, filters: Filters | None) -> Answer:
        read, hits = self.answer_inputs(question, k, filters)
        return compose_answer(read, hits, self._sentences, self.settings)

    def answer_inputs(self, question: str, k: int | None = None, filters: Filters | None = None):
        """What the answer reads for ``question``: (:class:`search.answer.Question`, hits).

        ``ask`` composes its answer from them (and bench/bench_abstention.py
        measures abstention signals on them).
        """
        with self.store.consistent_view():  # one state while an ingest commits; one connection on PostgreSQL
            q = self._prepare(question)
            asked = intent.detect(q.text)
            hits = self._search_vec(q, k or self.settings.top_k, filters, per_doc_limit=self._per_doc_limit(asked))
            n = self.store.passage_count()
            weights = self.term_weights(q.terms, n)
            # A word no passage contains says "off topic" only when the store
            # is big enough to have a vocabulary; in a five-document store
            # most ordinary words are unseen.
            unseen = _idf(0, n) if n >= UNSEEN_MIN_PASSAGES else None
        expansion = q.expansion
        read = Question.of(
            q.text, q.words, vector=q.vector, asked=asked, weights=weights, unseen_weight=unseen,
            also_searched=expansion.shown, alternatives=expansion.synonyms + expansion.related,
            known=self.vocabulary().acronyms,
            spans=tuple(self.vocabulary().spans(q.text)) if self.settings.expand_queries else (),
        )
        return read, hits

    def _per_doc_limit(self, asked: intent.Intent) -> int:
        """Passages one document may give an answer: "what works" points come
        from distinct sources where the store has them (at most two a source);
        other questions keep ``per_doc_limit`` (a question about one
        inspection report is answered from that report)."""
        limit = self.settings.per_doc_limit
        if asked.kind == intent.WHAT_WORKS:
            return min(limit, WHAT_WORKS_PER_DOC) if limit else WHAT_WORKS_PER_DOC
        return limit

    def term_weights(self, text: str | Sequence[str], n: int | None = None) -> dict[str, float]:
        """IDF (:func:`_idf`) of each query word in this store's passages.

        ``text``: the query or its content words; ``n``: the passage count.
        """
        if n is None:
            n = self.store.passage_count()
        terms = query_terms(text) if isinstance(text, str) else text
        return {term: _idf(self._text_df(term), n) for term in terms}

    def _text_df(self, term: str) -> int:
        """The store's ``text_df``, cached until the store changes: the learned
        ranker and the answer read the same words' counts, and on a large store
        counting a common word's passages is the expensive part."""
        cache = self.__dict__.setdefault("_df_cache", {})
        key = (term, self.store.generation())
        if key not in cache:
            if len(cache) > 50_000:
                cache.clear()
            cache[key] = self.store.text_df(term)
        return cache[key]

    def close(self) -> None:
        self.store.close()


class SentenceCache:
    """The answer's sentence encoder, remembering the vectors of sentences it has read.

    Encoding the retrieved passages' sentences is most of an answer's cost
    (bench/QUALITY.md); teachers' questions come back to the same passages,
    and a sentence's vector never changes for one model. Least recently used
    vectors go first past :data:`MAX`.
    """

    MAX = 20_000

    def __init__(self, embedder):
        import threading
        from collections import OrderedDict

        self._embedder = embedder  # a callable: the engine loads its model lazily
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # one engine serves the UI's sessions

    @property
    def name(self) -> str:
        return self._embedder().name

    @property
    def dim(self) -> int:
        return self._embedder().dim

    def encode(self, texts, *, batch_size: int = 32) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        new = dict(zip(todo, self._embedder().encode(todo, batch_size=batch_size))) if todo else {}
        with self._lock:
            self._vectors.update(new)
            got = {t: self._vectors[t] for t in texts}
            for t in got:
                self._vectors.move_to_end(t)
            while len(self._vectors) > self.MAX:
                self._vectors.popitem(last=False)
        return np.stack([got[t] for t in texts])


def _with_synonyms(query: str, expansion: Expansion) -> str:
    """The query as the models read it: its vocabulary synonyms in brackets
    ("what works for PLAC pupils? (previously looked-after children)")."""
    return f"{query} ({'; '.join(expansion.synonyms)})" if expansion.synonyms else query


def _idf(df: int, n: int) -> float:
    """Smoothed IDF of a word found in ``df`` of a store's ``n`` passages.

    ``IDF_PRIOR_PASSAGES`` pseudo-passages are added to the count, so a small
    store does not make every word it lacks look ten times rarer than a
    common one; in a store of thousands of passages it changes little.
    """
    return math.log((n + IDF_PRIOR_PASSAGES + 1) / (df + 1)) + 1.0


def _minmax(x: np.ndarray) -> np.ndarray:
    span = float(x.max() - x.min()) if len(x) else 0.0
    return (x - x.min()) / span if span > 0 else np.ones_like(x)


def _clean_query(query: str) -> str:
    # Bytes that were not UTF-8 reach Python as lone surrogates (a shell
    # argument in another encoding); they cannot be encoded for output or
    # the model, so they become U+FFFD.
    query = _SURROGATES.sub("\ufffd", query or "")
    query = " ".join(query.split())[:MAX_QUERY_CHARS]
    if not query:
        raise QueryError("the query is empty: type a question or some words to search for")
    return query
