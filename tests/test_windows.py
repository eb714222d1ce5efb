"""Windows of files: sizes, the read-ahead thread, the site-furniture pass."""
from __future__ import annotations

import threading

import pytest

from ingest.segments import Extracted, Segment
from ingest.windows import FIRST_WINDOW, WINDOW, Loaded, read_ahead, remove_site_furniture, windows


def test_windows_start_small_and_double():
    """The model starts after FIRST_WINDOW files; windows then double up to
    WINDOW and cover every file exactly once."""
    assert windows(0) == []
    assert windows(5) == [(0, 5)]
    assert windows(42) == [(0, 16), (16, 42)]
    sizes = [b - a for a, b in windows(1000)]
    assert sizes[:5] == [FIRST_WINDOW, 32, 64, 128, WINDOW] and max(sizes) == WINDOW
    for n in (1, 16, 17, 1000, 2345):
        spans = windows(n)
        assert spans[0][0] == 0 and spans[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:]))


def test_read_ahead_loads_on_a_worker_in_order_and_tags_from_first_tag():
    items = [f"file{i}" for i in range(40)]
    loaders, seen = set(), []
    read_ahead(items, lambda tag, item: (loaders.add(threading.current_thread().name), item.upper())[1],
               seen.append, first_tag=3)
    assert [len(w) for w in seen] == [16, 24]
    assert [t for w in seen for t, _ in w] == list(range(3, 43))
    assert [x for w in seen for _, x in w] == [i.upper() for i in items]
    assert loaders and all(name.startswith("ingest-read") for name in loaders)


def test_read_ahead_passes_errors_on_after_the_worker_stops():
    def consume(outcomes):
        raise RuntimeError("store full")

    with pytest.raises(RuntimeError, match="store full"):
        read_ahead(list(range(40)), lambda tag, item: item, consume)
    assert not [t for t in threading.enumerate() if t.name.startswith("ingest-read")]


def _page(site: str, *paragraphs: str) -> Loaded:
    segments = [Segment(p) for p in paragraphs]
    return Loaded(None, "src", "uri", "hash", Extracted(segments, {}), {}, None, site)


def test_furniture_repeated_on_half_a_sites_pages_goes_and_content_stays():
    menu = "Home About Contact"
    pages = [_page("a", menu, f"Article {i} about virtual school heads and their work.") for i in range(4)]
    other = _page("b", menu, "A page of another site keeps its menu.")
    out = remove_site_furniture(pages + [other])
    assert [[s.text for s in p.extracted.segments] for p in out[:4]] == \
        [[f"Article {i} about virtual school heads and their work."] for i in range(4)]
    assert [s.text for s in out[4].extracted.segments] == [menu, "A page of another site keeps its menu."]
