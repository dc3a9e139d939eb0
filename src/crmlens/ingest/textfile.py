"""Sniffing of delimited text files: encoding, delimiter, and early rejection of bad files.

Only a sample (the first :data:`SAMPLE_BYTES`) is read to decide; DuckDB then reads the file
itself when it can decode the encoding natively, otherwise :func:`transcode_to_utf8` streams it
into a UTF-8 copy first.

What DuckDB 2.0's ``read_csv(encoding=...)`` reads without the ``encodings`` extension (checked
against DuckDB 2.0.0): exactly ``'utf-8'``, ``'utf-16'`` and ``'latin-1'`` (no aliases such as
``utf8`` or ``latin1``). Its ``utf-16`` is little-endian and BMP-only: a big-endian file silently
yields zero rows and a character outside the BMP (an emoji) fails the whole read. Its ``latin-1``
rejects the bytes 0x80-0x9F, which is where Windows-1252 puts ``€``, curly quotes and dashes.
Hence :attr:`TextFormat.duckdb_encoding` is ``'utf-8'`` for any UTF-8 file, and ``'utf-16'`` or
``'latin-1'`` only when the sample is the whole file and proves DuckDB can read all of it.

Legacy encodings are told apart with a small scoring model rather than charset-normalizer, which
on files of a few lines calls GBK text ``cp949`` and Latin-1 text ``cp1250``: every candidate must
decode the sample strictly, and then the share of its characters that are common in real text
(GB2312 level-1 hanzi for GB18030, Big5 level-1 hanzi, kana and JIS level-1 kanji, or isolated
accented letters for Windows-1252) picks the winner.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
import logging
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from crmlens.errors import InputError
from crmlens.i18n import t

__all__ = ["DELIMITERS", "SAMPLE_BYTES", "TextFormat", "sniff_text_file", "transcode_to_utf8"]

log = logging.getLogger(__name__)

#: Bytes read from the start of a file to detect its format.
SAMPLE_BYTES = 4 * 1024 * 1024
#: Bytes read per step when transcoding.
CHUNK_BYTES = 1024 * 1024
#: Delimiters we detect, in order of preference when two fit equally well.
DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_ALIASES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
#: Records examined for delimiter detection.
_MAX_RECORDS = 100
#: Characters of decoded text scored when choosing between legacy encodings (speed bound).
_SCORE_CHARS = 200_000
#: Below this score no legacy encoding is believable and the file is reported as unknown.
_MIN_SCORE = 0.5

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# Magic numbers of files people pick by mistake; each maps to a hint key suffix.
_MAGIC = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "xls"),
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF87a", "image"),
    (b"GIF89a", "image"),
    (b"\x1f\x8b", "gzip"),
    (b"PAR1", "parquet"),
    (b"SQLite format 3\x00", "sqlite"),
    (b"7z\xbc\xaf\x27\x1c", "archive"),
    (b"\xfd7zXZ\x00", "archive"),
    (b"Rar!\x1a\x07", "archive"),
    (b"BZh91AY&SY", "archive"),
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")

_UTF16 = ("utf-16", "utf-16-le", "utf-16-be")
# Python's names for what the user may type; GBK and GB2312 are read as their superset GB18030.
_CANONICAL = {"iso8859-1": "latin-1", "gbk": "gb18030", "gb2312": "gb18030"}

# Characters that plausibly occur, isolated between ASCII, in Western European text.
_LATIN_PLAUSIBLE = frozenset(
    [chr(c) for c in range(0xC0, 0x100) if c not in (0xD7, 0xF7)]
    + list("ŒœŠšŽžŸƒ€£¥¢°§©®«»·¿¡µ²³¹½¼¾ºª±\xa0")
    # acute accent, dashes, curly quotes, ellipsis, bullet, trade mark (Windows-1252 extras)
    + list("\u00b4\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e\u2026\u2022\u2122")
)
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")


@dataclass(frozen=True)
class TextFormat:
    """How to read a delimited text file.

    Attributes
    ----------
    encoding : str
        Normalized Python codec name: ``utf-8``, ``utf-8-sig``, ``utf-16`` (with a BOM),
        ``utf-16-le``/``utf-16-be`` (without one), ``gb18030``, ``big5``, ``shift_jis``,
        ``latin-1`` or ``cp1252`` (or, when given explicitly, any text codec Python knows).
    delimiter : str
        One of ``,`` ``;`` ``\\t`` ``|``.
    duckdb_encoding : str or None
        Value for DuckDB ``read_csv(encoding=...)`` when DuckDB reads the file correctly
        as it is; ``None`` means transcode it with :func:`transcode_to_utf8` first.
    """

    encoding: str
    delimiter: str
    duckdb_encoding: str | None


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def sniff_text_file(
    path: Path, *, encoding: str | None = None, delimiter: str | None = None
) -> TextFormat:
    """Detect the encoding and delimiter of a delimited text file from its first bytes.

    Parameters
    ----------
    path : Path
        The file.
    encoding : str, optional
        Encoding given by the user: validated and used as is (GBK/GB2312 are read as GB18030).
    delimiter : str, optional
        Delimiter given by the user (``,`` ``;`` ``|``, or a tab as ``\\t``, ``"\\\\t"`` or
        ``tab``); checked against the file.

    Returns
    -------
    TextFormat

    Raises
    ------
    InputError
        ``error.file_unreadable``, ``error.file_empty``, ``error.file_binary``,
        ``error.encoding_name``, ``error.encoding_mismatch``, ``error.encoding_unknown``,
        ``error.encoding_invalid``, ``error.delimiter_invalid``, ``error.delimiter_mismatch``,
        ``error.header_only``.
    """
    path = Path(path)
    sample, size = _read_sample(path)
    whole = len(sample) >= size
    if not sample:
        raise InputError("error.file_empty", path=str(path))
    _reject_known_binary(path, sample)
    wanted = _normalize_delimiter(path, delimiter) if delimiter is not None else None
    if encoding is None:
        codec, text = _detect_encoding(path, sample, whole)
    else:
        codec, text = _explicit_encoding(path, sample, whole, encoding)
    _reject_nul_text(path, text, codec)
    if whole and not text.lstrip("\ufeff").strip():
        raise InputError("error.file_empty", path=str(path))
    chosen = _choose_delimiter(path, _complete_lines(text, whole), wanted, whole)
    result = TextFormat(codec, chosen, _duckdb_encoding(codec, sample, text, whole))
    log.debug("sniffed %s: %s", path, result)
    return result


def transcode_to_utf8(
    path: Path,
    encoding: str,
    out_path: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Stream ``path`` from ``encoding`` into a UTF-8 file (no BOM) at ``out_path``.

    The file is decoded in chunks with an incremental decoder, so memory stays flat and a
    multibyte character split between two chunks is decoded correctly.

    Parameters
    ----------
    path : Path
        Source file.
    encoding : str
        Python codec name, typically :attr:`TextFormat.encoding`.
    out_path : Path
        Destination; removed again if the source turns out not to decode.
    progress : callable, optional
        Called as ``progress(bytes_read, total_bytes)`` after each chunk.

    Raises
    ------
    InputError
        ``error.encoding_name`` for an unknown codec, ``error.encoding_invalid`` (with line and
        byte offset) for bytes that are not valid in ``encoding``, ``error.file_unreadable``.
    """
    path, out_path = Path(path), Path(out_path)
    codec = _resolve_codec(path, encoding)
    try:
        total = path.stat().st_size
        with open(path, "rb") as src, open(out_path, "wb") as dst:
            _transcode_stream(path, codec, src, dst, total, progress)
    except InputError:
        out_path.unlink(missing_ok=True)
        raise
    except OSError as exc:
        out_path.unlink(missing_ok=True)
        raise _unreadable(path, exc) from exc


# --------------------------------------------------------------------------------------------
# Reading and binary detection
# --------------------------------------------------------------------------------------------


def _unreadable(path: Path, exc: OSError) -> InputError:
    return InputError("error.file_unreadable", path=str(path), reason=exc.strerror or str(exc))


def _read_sample(path: Path) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as fh:
            size = path.stat().st_size
            return fh.read(SAMPLE_BYTES), size
    except OSError as exc:
        raise _unreadable(path, exc) from exc


def _binary_error(path: Path, kind: str, **params: object) -> InputError:
    # The hint is a catalogue entry of its own; both languages are filled in here because the
    # message is rendered later, in whichever language is current then.
    hint = f"hint.file_binary.{kind}"
    return InputError(
        "error.file_binary",
        path=str(path),
        kind=kind,
        hint_en=t(hint, lang="en", **params),
        hint_zh=t(hint, lang="zh", **params),
    )


def _reject_known_binary(path: Path, sample: bytes) -> None:
    if sample.startswith(_ZIP_MAGIC):
        if b"xl/" in sample:
            kind = "xlsx"
        elif b"opendocument.spreadsheet" in sample:
            kind = "ods"
        else:
            kind = "zip"
        raise _binary_error(path, kind)
    for magic, kind in _MAGIC:
        if sample.startswith(magic):
            raise _binary_error(path, kind)


def _reject_nul(path: Path, sample: bytes) -> None:
    offset = sample.find(b"\x00")
    if offset >= 0:
        raise _binary_error(path, "nul", offset=offset)


def _reject_nul_text(path: Path, text: str, codec: str) -> None:
    index = text.find("\x00")
    if index >= 0:
        # Re-encoding the prefix gives the byte offset in any codec (BOM included).
        raise _binary_error(path, "nul", offset=len(text[:index].encode(codec)))


# --------------------------------------------------------------------------------------------
# Encodings
# --------------------------------------------------------------------------------------------


def _resolve_codec(path: Path, name: str) -> str:
    try:
        info = codecs.lookup(name.strip())
    except (LookupError, TypeError, AttributeError):
        info = None
    # base64, rot13, zlib ... are codecs too, but not text encodings.
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise InputError("error.encoding_name", path=str(path), encoding=str(name))
    return _CANONICAL.get(info.name, info.name)


def _decode(sample: bytes, codec: str, whole: bool) -> str:
    """Decode strictly; when the sample is cut, a character cut at its end is not an error."""
    return codecs.getincrementaldecoder(codec)("strict").decode(sample, final=whole)


def _error_offset(exc: UnicodeDecodeError, input_end: int) -> int:
    """Absolute byte offset of a decoding error.

    ``exc.object`` is what the decoder was working on: the bytes it had buffered plus the new
    input, minus a BOM the utf-8-sig decoder already stripped; it always ends where the input
    ended, so counting back from there is right for every codec.
    """
    return input_end - len(exc.object) + exc.start


def _line_of(sample: bytes, offset: int, codec: str) -> int:
    return sample[:offset].decode(codec, errors="replace").count("\n") + 1


def _detect_encoding(path: Path, sample: bytes, whole: bool) -> tuple[str, str]:
    for bom, codec in _BOMS:
        if sample.startswith(bom):
            return codec, _decode_or_invalid(path, sample, codec, whole)
    codec = _utf16_without_bom(sample, whole)
    if codec:
        return codec, _decode(sample, codec, whole)
    _reject_nul(path, sample)
    try:
        return "utf-8", _decode(sample, "utf-8", whole)
    except UnicodeDecodeError as exc:
        utf8_error = _error_offset(exc, len(sample))
    best = _best_legacy(sample, whole)
    if best is None:
        raise InputError(
            "error.encoding_unknown",
            path=str(path),
            offset=utf8_error,
            line=_line_of(sample, utf8_error, "utf-8"),
        )
    return best


def _decode_or_invalid(path: Path, sample: bytes, codec: str, whole: bool) -> str:
    try:
        return _decode(sample, codec, whole)
    except UnicodeDecodeError as exc:
        offset = _error_offset(exc, len(sample))
        raise InputError(
            "error.encoding_invalid",
            path=str(path),
            encoding=codec,
            offset=offset,
            line=_line_of(sample, offset, codec),
        ) from exc


def _utf16_without_bom(sample: bytes, whole: bool) -> str | None:
    """UTF-16 text without a BOM: ASCII characters leave a NUL in every other byte."""
    head = sample[:65536]
    pairs = len(head) // 2
    if pairs < 2:
        return None
    nul_even, nul_odd = head[0::2].count(0), head[1::2].count(0)
    if nul_odd >= 0.1 * pairs and nul_even <= 0.01 * pairs:
        codec = "utf-16-le"
    elif nul_even >= 0.1 * pairs and nul_odd <= 0.01 * pairs:
        codec = "utf-16-be"
    else:
        return None
    try:
        text = _decode(sample, codec, whole)
    except UnicodeDecodeError:
        return None
    return codec if "\x00" not in text else None


def _explicit_encoding(path: Path, sample: bytes, whole: bool, name: str) -> tuple[str, str]:
    codec = _resolve_codec(path, name)
    # A BOM says more than the name: "utf-8" on a file with a BOM must not keep U+FEFF in the
    # first header, and "utf-16-le" on a file with a BOM is plain "utf-16".
    if codec == "utf-8" and sample.startswith(codecs.BOM_UTF8):
        codec = "utf-8-sig"
    elif codec in _UTF16 and sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        codec = "utf-16"
    if not codec.startswith(("utf-16", "utf-32", "utf_16", "utf_32")):
        _reject_nul(path, sample)
    try:
        text = _decode(sample, codec, whole)
    except UnicodeDecodeError as exc:
        offset = _error_offset(exc, len(sample))
        line = _line_of(sample, offset, codec)
        cause = exc
    else:
        _warn_if_unlikely(path, sample, whole, codec)
        return codec, text
    try:
        detected, _ = _detect_encoding(path, sample, whole)
    except InputError:
        detected = None
    if detected is None or detected == codec:
        raise InputError(
            "error.encoding_invalid", path=str(path), encoding=codec, offset=offset, line=line
        ) from cause
    raise InputError(
        "error.encoding_mismatch",
        path=str(path),
        encoding=codec,
        offset=offset,
        line=line,
        detected=detected,
    ) from cause


def _warn_if_unlikely(path: Path, sample: bytes, whole: bool, codec: str) -> None:
    # Latin-1 decodes any bytes, so a wrong explicit encoding often "works" and yields mojibake.
    try:
        detected, _ = _detect_encoding(path, sample, whole)
    except InputError:
        return
    if detected != codec and not sample.isascii():
        log.warning("%s: reading as %s as asked, but it looks like %s", path, codec, detected)


def _best_legacy(sample: bytes, whole: bool) -> tuple[str, str] | None:
    """The most plausible legacy encoding, or None when none is believable.

    Ties go to the earlier candidate: Chinese first, as that is what this tool mostly sees.
    """
    best: tuple[float, str, str] | None = None
    for codec, scorer in _LEGACY:
        try:
            text = _decode(sample, codec, whole)
        except UnicodeDecodeError:
            continue
        score = scorer(text[:_SCORE_CHARS])
        log.debug("encoding candidate %s scores %.3f", codec, score)
        if best is None or score > best[0]:
            best = (score, codec, text)
    latin = _latin_candidate(sample, whole)
    score = _score_latin(latin[1][:_SCORE_CHARS])
    log.debug("encoding candidate %s scores %.3f", latin[0], score)
    if best is None or score > best[0]:
        best = (score, *latin)
    if best[0] < _MIN_SCORE:
        return None
    return best[1], best[2]


def _latin_candidate(sample: bytes, whole: bool) -> tuple[str, str]:
    # Windows-1252 and Latin-1 agree on every byte but 0x80-0x9F, where Latin-1 has only
    # invisible control codes; so cp1252 unless the file uses one of its five undefined bytes.
    try:
        return "cp1252", _decode(sample, "cp1252", whole)
    except UnicodeDecodeError:
        return "latin-1", sample.decode("latin-1")


def _mean(weights: list[float]) -> float:
    return sum(weights) / len(weights) if weights else 0.0


def _touches_ascii_letter(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    return (before.isascii() and before.isalpha()) or (after.isascii() and after.isalpha())


def _cjk_scorer(codec: str, weight: Callable[[bytes], float]) -> Callable[[str], float]:
    def score(text: str) -> float:
        weights = []
        for match in _NON_ASCII_RUN.finditer(text):
            run = match.group()
            # An accented letter read as a double-byte code swallows the ASCII letter after it
            # and yields one lone ideograph glued to Latin letters ("Müller" -> "M黮ler");
            # real CJK words are runs of ideographs next to digits, spaces or delimiters.
            if len(run) == 1 and _touches_ascii_letter(text, match.start(), match.end()):
                weights.append(0.0)
                continue
            for ch in run:
                try:
                    weights.append(weight(ch.encode(codec)))
                except UnicodeEncodeError:
                    weights.append(0.0)
        return _mean(weights)

    return score


def _gb_weight(code: bytes) -> float:
    # GB2312 rows: A1-A3 punctuation and full-width forms, A4-A9 kana/Greek/Cyrillic/box drawing,
    # B0-D7 the 3,755 level-1 hanzi (over 99% of running text), D8-F7 the level-2 hanzi. GB2312
    # codes have both bytes >= 0xA1; the rest of GBK/GB18030 holds rare characters only.
    if len(code) != 2 or code[1] < 0xA1:
        return 0.0
    lead = code[0]
    if 0xA1 <= lead <= 0xA3 or 0xB0 <= lead <= 0xD7:
        return 1.0
    if 0xD8 <= lead <= 0xF7:
        return 0.5
    if 0xA4 <= lead <= 0xA9:
        return 0.25
    return 0.0


def _big5_weight(code: bytes) -> float:
    # Big5: A1-A2 punctuation, A3 bopomofo, A4-C6 the 5,401 frequent hanzi, C9-F9 the rest.
    lead = code[0]
    if 0xA1 <= lead <= 0xA2 or 0xA4 <= lead <= 0xC6:
        return 1.0
    if lead == 0xA3 or 0xC9 <= lead <= 0xF9:
        return 0.5
    return 0.0


def _sjis_weight(code: bytes) -> float:
    # Shift-JIS: 81-83 symbols, kana and full-width forms, 88-98 JIS level-1 kanji, 98-EA level 2;
    # single bytes A1-DF are half-width katakana, which accented Latin letters also decode to.
    if len(code) == 1:
        return 0.25
    lead = code[0]
    if 0x81 <= lead <= 0x83 or 0x88 <= lead <= 0x97:
        return 1.0
    if 0x98 <= lead <= 0xEA:
        return 0.5
    return 0.25 if lead == 0x84 else 0.0


def _score_latin(text: str) -> float:
    # Accented letters in European text sit one (rarely two) at a time between ASCII letters;
    # CJK bytes read as Windows-1252 come out as long runs like "¿Í»§±àºÅ".
    weights = []
    for run in _NON_ASCII_RUN.findall(text):
        plausible = len(run) <= 2
        weights.extend(1.0 if plausible and ch in _LATIN_PLAUSIBLE else 0.0 for ch in run)
    return _mean(weights)


_LEGACY = (
    ("gb18030", _cjk_scorer("gb18030", _gb_weight)),
    ("big5", _cjk_scorer("big5", _big5_weight)),
    ("shift_jis", _cjk_scorer("shift_jis", _sjis_weight)),
)


def _duckdb_encoding(codec: str, sample: bytes, text: str, whole: bool) -> str | None:
    """The DuckDB encoding name that reads this file exactly as ``codec`` does, if any."""
    if codec in ("utf-8", "utf-8-sig"):
        return "utf-8"  # DuckDB skips the BOM and validates UTF-8 itself
    if not whole:
        return None  # only the whole file proves DuckDB's narrower decoders suffice
    if codec in ("latin-1", "cp1252") and not re.search(rb"[\x80-\x9f]", sample):
        return "latin-1"
    little_endian = codec == "utf-16-le" or (
        codec == "utf-16" and sample.startswith(codecs.BOM_UTF16_LE)
    )
    if little_endian and not any(ord(ch) > 0xFFFF for ch in text):
        return "utf-16"
    return None


# --------------------------------------------------------------------------------------------
# Delimiters
# --------------------------------------------------------------------------------------------


def _normalize_delimiter(path: Path, delimiter: str) -> str:
    value = _DELIMITER_ALIASES.get(delimiter.strip().lower(), delimiter)
    if value not in DELIMITERS:
        raise InputError("error.delimiter_invalid", path=str(path), delimiter=delimiter)
    return value


def _show(delimiter: str) -> str:
    return "\\t" if delimiter == "\t" else delimiter


def _complete_lines(text: str, whole: bool) -> str:
    text = text.lstrip("\ufeff")
    if not whole:
        # The last line of a cut sample is incomplete; a quoted newline may still be cut, which
        # costs at most one odd record out of a hundred.
        cut = text.rfind("\n")
        text = text[: cut + 1] if cut >= 0 else text
    return text


def _parse(text: str, delimiter: str) -> list[list[str]]:
    """The first non-blank records of ``text`` split with ``delimiter`` (quotes respected)."""
    records: list[list[str]] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    try:
        for record in reader:
            if any(field.strip() for field in record):
                records.append(record)
                if len(records) >= _MAX_RECORDS:
                    break
    except csv.Error:
        pass  # e.g. an unbalanced quote running into the field size limit: judge what we have
    return records


@dataclass(frozen=True)
class _Split:
    delimiter: str
    columns: int  # the most common field count
    share: float  # share of records with that count
    header_fits: bool
    all_single: bool

    @property
    def consistent(self) -> bool:
        return self.columns >= 2 and self.share >= 0.9 and self.header_fits


def _split_stats(text: str, delimiter: str) -> tuple[_Split, int]:
    counts = [len(record) for record in _parse(text, delimiter)]
    if not counts:
        return _Split(delimiter, 1, 1.0, True, True), 0
    tally = Counter(counts)
    columns = max(tally, key=lambda n: (tally[n], n))
    split = _Split(
        delimiter,
        columns,
        tally[columns] / len(counts),
        counts[0] == columns,
        all(n == 1 for n in counts),
    )
    return split, len(counts)


def _choose_delimiter(path: Path, text: str, wanted: str | None, whole: bool) -> str:
    splits: dict[str, _Split] = {}
    records = 0
    for delimiter in DELIMITERS:
        splits[delimiter], seen = _split_stats(text, delimiter)
        records = max(records, seen)
    if whole and records == 1:
        raise InputError("error.header_only", path=str(path))
    ranked = sorted(
        (s for s in splits.values() if s.columns >= 2),
        key=lambda s: (s.share, s.header_fits, s.columns, -DELIMITERS.index(s.delimiter)),
        reverse=True,
    )
    if wanted is None:
        return ranked[0].delimiter if ranked else ","
    better = next((s for s in ranked if s.consistent), None)
    if splits[wanted].all_single and better is not None:
        raise InputError(
            "error.delimiter_mismatch",
            path=str(path),
            delimiter=_show(wanted),
            suggested=_show(better.delimiter),
            columns=better.columns,
        )
    return wanted


# --------------------------------------------------------------------------------------------
# Transcoding
# --------------------------------------------------------------------------------------------


def _transcode_stream(
    path: Path,
    codec: str,
    src: BinaryIO,
    dst: BinaryIO,
    total: int,
    progress: Callable[[int, int], None] | None,
) -> None:
    decoder = codecs.getincrementaldecoder(codec)("strict")
    done = 0  # bytes of the source consumed so far
    newlines = 0  # line breaks written so far, to name the line of a bad byte
    bom_checked = False
    while True:
        chunk = src.read(CHUNK_BYTES)
        final = not chunk
        state = decoder.getstate()
        try:
            text = decoder.decode(chunk, final=final)
        except UnicodeDecodeError as exc:
            raise _invalid_at(path, codec, state, chunk, exc, done, newlines) from exc
        if text and not bom_checked:
            # "utf-8" given for a file that has a BOM anyway: the output must not keep it.
            text, bom_checked = text.removeprefix("\ufeff"), True
        newlines += text.count("\n")
        dst.write(text.encode("utf-8"))
        done += len(chunk)
        if progress is not None and chunk:
            progress(done, total)
        if final:
            return


def _invalid_at(
    path: Path,
    codec: str,
    state: tuple[bytes, int],
    chunk: bytes,
    exc: UnicodeDecodeError,
    done: int,
    newlines: int,
) -> InputError:
    """Locate a decoding error in the file and count the lines before it."""
    offset = _error_offset(exc, done + len(chunk))
    redo = codecs.getincrementaldecoder(codec)("strict")
    redo.setstate(state)
    valid = chunk[: max(offset - done, 0)]
    # The prefix before the error decoded once already; should it not, the line is approximate.
    with contextlib.suppress(UnicodeDecodeError):
        newlines += redo.decode(valid).count("\n")
    return InputError(
        "error.encoding_invalid", path=str(path), encoding=codec, offset=offset, line=newlines + 1
    )
