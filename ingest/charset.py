"""Bytes to text for web pages and text files: which character encoding.

Declarations are honoured but checked, because on the web they are often
wrong: a page saved as UTF-8 by an editor still says ``charset=iso-8859-1``
in a template, a server stamps ``charset=utf-8`` on every response, a
Latin-1 fragment is pasted into a UTF-8 page. The order, for ``decode_html``
(``decode_text`` is the same without the ``<meta>`` step):

1. a byte-order mark (it always wins, as in the HTML standard);
2. a declared UTF-16/UTF-32 (not ASCII-compatible, so the checks below
   would misread it);
3. bytes that are valid UTF-8 are UTF-8, whatever the label says: text in
   a legacy encoding with any non-ASCII byte is practically never valid
   UTF-8 by accident, while UTF-8 labelled ``iso-8859-1`` is common (and
   reading it as labelled gives ``schÃ¶n``);
4. bytes that are *mostly* UTF-8 (a few stray Latin-1 bytes among many
   valid UTF-8 sequences) are UTF-8, the stray bytes read as Windows-1252;
5. the HTTP ``Content-Type`` charset, then ``<meta charset>`` /
   ``http-equiv`` (or an XML declaration), as the HTML standard maps their
   labels (``iso-8859-1`` means Windows-1252, ``gb2312`` means GB18030...),
   kept when the bytes decode under it and charset_normalizer's mess
   detector does not find the result garbled (``k³ótnie`` is Windows-1250
   read as Windows-1252);
6. Windows-1252, the HTML standard's default for English locales, when
   the bytes decode under it cleanly: charset_normalizer guesses badly on
   short English text (it reads ``school’s £5m`` as ``schoolôs``). The
   price: undeclared Czech or Turkish text with few special letters can
   come out as Windows-1252 (``pøijímání``); a declaration avoids it;
7. charset_normalizer's detection (Polish, Chinese, Cyrillic... pages with
   no declaration or a wrong one);
8. Windows-1252 with replacement characters, so that text is never lost.

Binary data (NUL bytes, control characters) is refused with an
:class:`~search.errors.ExtractionError`.
"""
from __future__ import annotations

import codecs
import logging
import re

from search.errors import ExtractionError

log = logging.getLogger(__name__)

#: Where labels mean something else on the web than in Python's codec
#: registry: the WHATWG Encoding Standard's mapping (https://encoding.spec.whatwg.org/#names-and-labels),
#: keyed by Python's canonical codec name. Browsers decode "iso-8859-1" as
#: Windows-1252, "gb2312"/"gbk" as GB18030 and so on; doing the same keeps
#: curly quotes and the euro sign, and never fails where a browser succeeds.
_WEB_CODECS = {
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
    "utf-16": "utf-16-le",  # without a byte-order mark
}
#: Labels a page must not be decoded with: UTF-7 can smuggle markup past
#: filters (the standard maps it to "replacement"); the others are not
#: character encodings of text at all.
_REFUSED = {"utf-7", "unicode-escape", "raw-unicode-escape", "undefined"}

_META_CHARSET = re.compile(rb"""<meta\b[^>]*?\bcharset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_XML_ENCODING = re.compile(rb"""\A\s*<\?xml\b[^>]*?\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)""", re.I)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
#: UTF-32-LE's mark starts with UTF-16-LE's, so it is tried first.
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))

#: How many bytes of the page to search for a <meta> declaration (the HTML
#: standard's prescan looks at 1024; real pages put it later, after scripts).
META_WINDOW = 8192
#: Above this mess ratio (charset_normalizer's default threshold) a decoding
#: under the declared charset is garbled and the declaration is wrong.
MESSY = 0.2
#: The Windows-1252 default is taken only when the mess detector finds
#: next to nothing suspicious; otherwise detection decides.
CLEAN = 0.02
#: Characters the mess detector reads (it is linear; a 20 MiB page would take seconds).
MESS_SAMPLE = 256 * 1024
#: Valid UTF-8 sequences per invalid byte above which a page is UTF-8 with
#: stray bytes (Latin-1 text has essentially none; GBK text about one per
#: three, since some of its byte pairs happen to be valid UTF-8).
MOSTLY_UTF8 = 4


def _stray_as_cp1252(err: UnicodeDecodeError) -> tuple[str, int]:
    """Codec error handler: read bytes that are not UTF-8 as Windows-1252."""
    return err.object[err.start:err.end].decode("cp1252", errors="replace"), err.end


codecs.register_error("equisearch.cp1252", _stray_as_cp1252)


def web_codec(label: str) -> str:
    """Python codec for a charset label as browsers read it, or "" if unknown or refused."""
    label = (label or "").strip().strip("\"'").lower()
    if not label:
        return ""
    try:
        info = codecs.lookup(label)
    except LookupError:
        return ""
    if info.name in _REFUSED or not getattr(info, "_is_text_encoding", True):
        return ""
    return _WEB_CODECS.get(info.name, info.name)


def declared_charset(data: bytes) -> str:
    """The charset a page's ``<meta>`` tag or XML declaration names, or ""."""
    head = data[:META_WINDOW]
    m = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    return m.group(1).decode("ascii") if m else ""


def decode_html(data: bytes, name: str, declared: str = "") -> str:
    """A web page's text; ``declared`` is the HTTP ``Content-Type`` charset, if any."""
    return _decode(data, name, (declared, declared_charset(data)))


def decode_text(data: bytes, name: str, declared: str = "") -> str:
    """A text file's (or text response's) text, newlines normalised to ``\\n``."""
    text = _decode(data, name, (declared,))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _decode(data: bytes, name: str, labels: tuple[str, ...]) -> str:
    text = _pick(data, name, [c for c in dict.fromkeys(web_codec(x) for x in labels) if c])
    controls = sum(1 for ch in text[:8192] if ord(ch) < 32 and ch not in "\r\n\t\f")
    if controls > max(8, len(text[:8192]) // 20):
        raise _binary(name)
    return text


def _binary(name: str) -> ExtractionError:
    return ExtractionError(f"{name}: looks like a binary file, not text: convert it to text, PDF or HTML first")


def _pick(data: bytes, name: str, codecs_declared: list[str]) -> str:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(codec, errors="replace")
    for codec in codecs_declared:
        if codec.startswith(("utf-16", "utf-32")):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                log.info("%s: declared %s but the bytes are not; detecting", name, codec)
    sample = data[:8192]
    if sample.count(b"\0") > len(sample) // 100:
        raise _binary(name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if codecs_declared and codecs_declared[0] != "utf-8" and _NON_ASCII.search(text):
            log.info("%s: declared %s but the bytes are UTF-8; read as UTF-8", name, codecs_declared[0])
        return text
    lenient = data.decode("utf-8", errors="replace")
    stray = lenient.count("\ufffd")
    valid = sum(1 for _ in _NON_ASCII.finditer(lenient)) - stray
    if valid >= MOSTLY_UTF8 * stray:
        log.info("%s: UTF-8 with %d stray non-UTF-8 byte(s); those read as Windows-1252", name, stray)
        return data.decode("utf-8", errors="equisearch.cp1252")

    from charset_normalizer import from_bytes
    from charset_normalizer.md import mess_ratio

    for codec in codecs_declared:
        if codec == "utf-8":
            continue
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            log.info("%s: not valid %s as declared; detecting", name, codec)
            continue
        if mess_ratio(text[:MESS_SAMPLE], MESSY) < MESSY:
            return text
        log.info("%s: garbled when read as the declared %s; detecting", name, codec)
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        pass
    else:
        if mess_ratio(text[:MESS_SAMPLE], CLEAN) < CLEAN:
            return text
    # preemptive_behaviour off: the declarations were tried above.
    best = from_bytes(data, preemptive_behaviour=False).best()
    if best is not None:
        log.info("%s: detected %s", name, best.encoding)
        return str(best)
    log.warning("%s: character encoding not recognised; read as Windows-1252 with replacements", name)
    return data.decode("cp1252", errors="replace")
