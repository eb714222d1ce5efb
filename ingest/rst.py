"""reStructuredText (.rst) through docutils' own parser.

docutils reads the markup (section underlines, definition and field lists,
directives, substitutions) exactly as Sphinx and every .rst tool do; a
hand-written cleaner would have to re-learn all of it. The document tree is
walked into segments: section titles become headings (and each segment's
``section``), paragraphs become paragraphs, list items become "item" or
"numbered" segments, a definition-list entry becomes "term: definition".

Nothing is read from outside the file: ``.. include::`` and ``.. raw::``
are disabled (a shared policy folder rarely ships the included files, and
a document must not pull another file into the index), and docutils' own
complaints (undefined substitutions, missing includes) are left out of the
text. An undefined ``|substitution|`` keeps its name, which is usually the
readable word it stands for.
"""
from __future__ import annotations

import re

from .segments import Extracted, Segment

_SETTINGS = {
    "report_level": 5,  # never print to stderr
    "halt_level": 5,  # never raise on a markup error: keep what parses
    "file_insertion_enabled": False,
    "raw_enabled": False,
    "input_encoding": "unicode",
    "doctitle_xform": True,
    "docinfo_xform": True,
    "warning_stream": False,
}


def _flat(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def extract_rst(text: str, name: str) -> Extracted:
    """Segments and title of a reStructuredText document."""
    from docutils import nodes
    from docutils.core import publish_doctree

    tree = publish_doctree(text, source_path=name, settings_overrides=_SETTINGS)
    for junk in list(tree.findall(lambda n: isinstance(n, (nodes.system_message, nodes.comment,
                                                             nodes.substitution_definition, nodes.raw,
                                                             nodes.target, nodes.topic)))):
        # topic: ".. contents::" (a generated table of contents) and similar boxes
        if isinstance(junk, nodes.topic) and "contents" not in junk.get("classes", []):
            continue
        junk.parent.remove(junk)
    for ref in list(tree.findall(nodes.problematic)):  # an undefined |substitution|: keep its name
        ref.parent.replace(ref, nodes.Text(ref.astext().strip("|_")))

    title = ""
    for t in tree.findall(nodes.title):
        if t.parent is tree:
            title = _flat(t.astext())
            break
    segments: list[Segment] = []
    if title:
        segments.append(Segment(title, section=title, kind="heading"))

    def section_of(node) -> str:
        p = node.parent
        while p is not None:
            if isinstance(p, nodes.section) and p.children and isinstance(p[0], nodes.title):
                return _flat(p[0].astext())
            p = p.parent
        return title

    def walk(node) -> None:
        for child in node.children:
            if isinstance(child, nodes.title):
                if child.parent is tree:
                    continue
                segments.append(Segment(_flat(child.astext()), section=_flat(child.astext()), kind="heading"))
            elif isinstance(child, (nodes.docinfo, nodes.field_list)):
                for field in child.findall(nodes.field):
                    label, body = field[0].astext(), _flat(field[1].astext()) if len(field) > 1 else ""
                    if body:
                        segments.append(Segment(f"{_flat(label)}: {body}", section=section_of(child)))
                for item in child.children:  # docinfo's typed fields (author, date, ...)
                    if not isinstance(item, nodes.field) and _flat(item.astext()):
                        segments.append(Segment(f"{item.tagname.capitalize()}: {_flat(item.astext())}",
                                                section=section_of(child)))
            elif isinstance(child, nodes.definition_list_item):
                term = _flat(" ".join(t.astext() for t in child.findall(nodes.term)))
                body = _flat(" ".join(d.astext() for d in child.findall(nodes.definition)))
                segments.append(Segment(f"{term}: {body}" if body else term, section=section_of(child)))
            elif isinstance(child, nodes.list_item):
                numbered = isinstance(child.parent, nodes.enumerated_list)
                n = child.parent.index(child) + child.parent.get("start", 1) if numbered else None
                lists = (nodes.bullet_list, nodes.enumerated_list, nodes.definition_list)
                own = _flat(" ".join(c.astext() for c in child.children if not isinstance(c, lists)))
                if own:
                    segments.append(Segment(own, section=section_of(child), kind="numbered" if numbered else "item",
                                            label=f"{n}." if numbered else "•"))
                walk_lists(child, lists)
            elif isinstance(child, (nodes.paragraph, nodes.literal_block, nodes.line_block)):
                segments.append(Segment(_flat(child.astext()), section=section_of(child)))
            elif isinstance(child, nodes.table):
                for row in child.findall(nodes.row):
                    cells = [_flat(e.astext()) for e in row.children if _flat(e.astext())]
                    if cells:
                        segments.append(Segment(" ".join(cells), section=section_of(child)))
            else:
                walk(child)

    def walk_lists(item, lists) -> None:  # a list inside a list item: its items follow the item
        for c in item.children:
            if isinstance(c, lists):
                walk(c)

    walk(tree)
    meta: dict = {"kind": "article"}
    if title:
        meta["title"] = title
    return Extracted([s for s in segments if s.text], meta)
