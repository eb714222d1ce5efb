"""Exports (search/exports.py) of hostile list items, read back by bibtexparser
and rispy: every entry, every field, nothing spilling out of its value.

The items are built directly (no store): tests/test_lists.py covers exports
through ReadingLists over a real store.
"""
from __future__ import annotations

import csv
import io

import bibtexparser
import pytest
import rispy

from search.exports import one_line, to_bibtex, to_csv, to_markdown, to_ris
from search.lists import ListItem, ReadingList

_BASE = dict(list_id=1, doc_id=1, chunk_id=1, uri="/x.txt", title="T", site="", kind="", date="", author="",
             url="", link="", location="", page_start=None, page_end=None, t_start=None, t_end=None, text="",
             words=10, note="", added_at="2025-01-01T00:00:00Z")

HOSTILE = [
    dict(item_type="passage", title='Odd {brace and 100% of R&D_costs #1 ~ ^ \\ "quoted" <script>', site="DfE",
         kind="guidance", date="2018-02-01", url="https://www.gov.uk/g?x=1&y={2}#top",
         link="https://www.gov.uk/g?x=1&y={2}#top", location="p. 3", page_start=3, page_end=4,
         text="Line one\nline } two { three", note='Discuss:\n"why", & how {x}\r\nend'),
    dict(item_type="source", title="Réussite scolaire — élèves\nnew line", author="Éloïse Dupont and 王 小明",
         site="Ofsted", kind="inspection", date="2019", url="https://ex.org/a b\\c", note="100% essential"),
    dict(item_type="passage", title="SEND costs report", author="Smith, Jo and Khan, Ali", kind="article",
         date="2021", text="The SEND system", page_start=5, page_end=5),
    dict(item_type="passage", title="Talk", kind="transcript", site="YouTube", url="https://youtu.be/x",
         link="https://youtu.be/x?t=30", location="00:30-01:00", text="so we said", status="changed"),
    dict(item_type="source", title="", uri="/local/file.pdf", kind="report", status="removed"),
    dict(item_type="source", title="中文标题", author="王小明"),
    dict(item_type="source", title="@misc{evil, title={x}}", site="@@", kind="article", note="@book(x,\n@misc{y,"),
]


def _items(cases):
    out = []
    for n, case in enumerate(cases, 1):
        values = {**_BASE, **case}
        status = values.pop("status", "current")
        out.append(ListItem(id=n, position=n, status=status, **values))
    return out


def _list(name='Exports "test" {list}'):
    return ReadingList(1, name, "now", "now")


def _balanced(text: str) -> bool:
    depth = 0
    for c in text:
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0


def test_bibtex_of_hostile_items_parses_back_whole():
    items = _items(HOSTILE)
    text = to_bibtex(_list(), items)
    lib = bibtexparser.parse_string(text)
    assert not lib.failed_blocks, [b.error for b in lib.failed_blocks]
    assert len(lib.entries) == len(items)
    assert len({e.key for e in lib.entries}) == len(items)
    assert all(e.key.isascii() for e in lib.entries) and lib.entries[1].key == "eloise2019"
    for entry in lib.entries:
        assert {"title", "note"} <= set(entry.fields_dict)
        for field in entry.fields:
            assert "\n" not in field.value and _balanced(field.value), (entry.key, field.key, field.value)
    first = lib.entries[0].fields_dict
    assert first["url"].value == "https://www.gov.uk/g?x=1&y=%7B2%7D#top" and first["pages"].value == "3--4"
    assert lib.entries[1].fields_dict["title"].value == "{Réussite scolaire — élèves new line}"  # UTF-8 kept
    assert lib.entries[1].fields_dict["url"].value == "https://ex.org/a%20b%5Cc"
    # Every entry is balanced on its own, so one cannot swallow the next.
    for block in text.split("\n@")[1:]:
        assert _balanced(block)


def test_bibtex_layout_is_the_one_we_document():
    item = _items([dict(item_type="source", title="SEND costs", site="DfE", kind="report", date="2021",
                        url="https://example.org/r")])
    assert to_bibtex(_list("L"), item) == (
        "% Reading list: L (exported from equisearch)\n"
        "\n"
        "@techreport{dfe2021,\n"
        "  title = {{SEND costs}},\n"
        "  institution = {DfE},\n"
        "  type = {Report},\n"
        "  year = {2021},\n"
        "  url = {https://example.org/r},\n"
        "  note = {Whole source. Reading list: 1 min.}\n"
        "}\n"
    )
    assert to_bibtex(_list("L"), []) == "% Reading list: L (exported from equisearch)\n"


def test_keys_stay_unique_past_z():
    items = _items([dict(item_type="source", title=f"Same {n}", site="DfE", date="2018") for n in range(30)])
    keys = [e.key for e in bibtexparser.parse_string(to_bibtex(_list(), items)).entries]
    assert keys[:3] == ["dfe2018", "dfe2018a", "dfe2018b"] and keys[27] == "dfe2018aa" and len(set(keys)) == 30


@pytest.mark.parametrize("name", ["Plan @home (draft)", "@misc{x,", "a@b"])
def test_list_name_with_an_at_sign_stays_in_the_comment(name):
    """BibTeX starts an entry at any `@`, even in a comment: the name must not make one."""
    for items in (_items(HOSTILE[:1]), []):
        text = to_bibtex(_list(name), items)
        lib = bibtexparser.parse_string(text)
        assert not lib.failed_blocks and len(lib.entries) == len(items), [e.entry_type for e in lib.entries]
        assert "@" not in text.splitlines()[0]


def test_ris_of_hostile_items_parses_back_every_field():
    items = _items(HOSTILE)
    text = to_ris(_list(), items)
    records = rispy.loads(text)
    assert len(records) == len(items)
    lines = text.split("\r\n")
    assert lines[0] == "TY  - RPRT" and text.endswith("ER  - \r\n") and "\n" not in text.replace("\r\n", "")
    assert all(line == "" or line[2:6] == "  - " for line in lines)  # one tagged value per line
    # Every tag line written is a value read back (nothing merged or dropped).
    values = sum(len(v) if isinstance(v, list) else 1 for r in records for v in r.values())
    assert values == sum(1 for line in lines if line[2:6] == "  - " and not line.startswith("ER"))
    first = records[0]
    assert first["title"] == one_line(HOSTILE[0]["title"]) and first["date"] == "2018/02/01/"
    assert (first["start_page"], first["end_page"]) == ("3", "4")
    assert first["urls"] == ["https://www.gov.uk/g?x=1&y={2}#top"]
    assert first["keywords"] == ["guidance", 'reading list: Exports "test" {list}']
    assert records[1]["authors"] == ["Éloïse Dupont", "王 小明"]
    assert [r["type_of_reference"] for r in records] == ["RPRT", "RPRT", "GEN", "VIDEO", "RPRT", "GEN", "GEN"]
    assert to_ris(_list(), []) == ""


def test_csv_and_markdown_keep_hostile_text():
    items = _items(HOSTILE)
    rows = list(csv.DictReader(io.StringIO(to_csv(_list(), items), newline="")))
    assert rows[0]["note"] == 'Discuss:\n"why", & how {x}\r\nend' and len(rows) == len(items)
    md = to_markdown(_list(), items)
    assert "\\<script\\>" in md and "<script>" not in md
