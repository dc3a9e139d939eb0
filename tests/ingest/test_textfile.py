"""Sniffing and transcoding of delimited text files (crmlens.ingest.textfile)."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import sqlite3
from pathlib import Path

import duckdb
import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmlens.errors import InputError
from crmlens.ingest import textfile
from crmlens.ingest.textfile import SAMPLE_BYTES, TextFormat, sniff_text_file, transcode_to_utf8

GBK_ORDERS = (
    "客户编号,订单号,下单时间,金额\n"
    "17850,536365,2011年12月9日,15.30\n"
    "13047,536367,2011年12月9日,22.00\n"
)
EUROPEAN = "Name;Stadt;Betrag\nCafé;Müller;1,50 €\nJosé;Zürich;2,00\n"


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def rows_of(text: str, delimiter: str) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if r]


def duckdb_rows(path: Path, fmt: TextFormat, tmp_path: Path) -> list[list[str]]:
    """Read the file the way the ingest pipeline does: natively, or after transcoding."""
    if fmt.duckdb_encoding is None:
        target = tmp_path / "via_utf8.csv"
        transcode_to_utf8(path, fmt.encoding, target)
        path, encoding = target, "utf-8"
    else:
        encoding = fmt.duckdb_encoding
    con = duckdb.connect()
    rel = con.execute(
        "SELECT * FROM read_csv(?, delim = ?, header = false, all_varchar = true, "
        "quote = '\"', encoding = ?)",
        [str(path), fmt.delimiter, encoding],
    )
    return [[v or "" for v in row] for row in rel.fetchall()]


def expect_error(key: str, path: Path, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        sniff_text_file(path, **kwargs)
    err = info.value
    assert err.key == key
    assert path.name in err.message("en")
    assert path.name in err.message("zh")
    assert err.message("en") != err.message("zh")  # both languages exist in the catalogue
    return err


# --------------------------------------------------------------------------------------------
# Encodings: detection, transcoding, and what DuckDB is trusted to read natively
# --------------------------------------------------------------------------------------------

CHINESE = "客户,城市,备注\n张三,北京,VIP 会员\n李四,上海,\n"

ROUND_TRIPS = [
    # (text, how to encode, expected encoding, expected duckdb_encoding)
    (CHINESE, "utf-8", "utf-8", "utf-8"),
    (CHINESE, "utf-8-sig", "utf-8-sig", "utf-8"),
    (CHINESE.replace(",", "\t"), "utf-16", "utf-16", "utf-16"),  # LE with BOM, as Excel writes
    (CHINESE.replace(",", "\t"), "utf-16-be-bom", "utf-16", None),  # DuckDB: 0 rows for BE
    (CHINESE.replace(",", "\t"), "utf-16-le", "utf-16-le", "utf-16"),
    (CHINESE.replace(",", "\t"), "utf-16-be", "utf-16-be", None),
    ("客户,备注\n1,笑脸 😀\n", "utf-16", "utf-16", None),  # DuckDB's utf-16 is BMP-only
    (GBK_ORDERS, "gbk", "gb18030", None),
    ("客户,备注\n1,𠮷野家\n2,€ 欧元\n", "gb18030", "gb18030", None),  # 4-byte sequences
    ("客戶編號,訂單號,下單時間\n17850,536365,2011年12月9日\n", "big5", "big5", None),
    ("顧客番号,名前\n1,やまだ たろう\n2,東京都\n", "shift_jis", "shift_jis", None),
    ("Name;Stadt\nMüller;Köln\nRenée;Genève\n", "latin-1", "cp1252", "latin-1"),
    (EUROPEAN, "cp1252", "cp1252", None),  # € is 0x80, which DuckDB's latin-1 rejects
]


def encode(text: str, how: str) -> bytes:
    if how == "utf-16-be-bom":
        return b"\xfe\xff" + text.encode("utf-16-be")
    return text.encode(how)


@pytest.mark.parametrize(("text", "how", "encoding", "native"), ROUND_TRIPS)
def test_encoding_round_trip(tmp_path, text, how, encoding, native):
    path = write(tmp_path, "data.csv", encode(text, how))
    fmt = sniff_text_file(path)
    assert fmt.encoding == encoding
    assert fmt.duckdb_encoding == native
    out = tmp_path / "out.csv"
    transcode_to_utf8(path, fmt.encoding, out)
    assert out.read_bytes() == text.encode("utf-8")  # UTF-8 without BOM, nothing changed
    # The format is right only if DuckDB then reads exactly the rows that were written.
    assert duckdb_rows(path, fmt, tmp_path) == rows_of(text, fmt.delimiter)


def test_small_gbk_file_is_gb18030_not_a_lookalike(tmp_path):
    path = write(tmp_path, "orders.csv", GBK_ORDERS.encode("gbk"))
    assert sniff_text_file(path) == TextFormat("gb18030", ",", None)
    tiny = write(tmp_path, "tiny.csv", "姓名\n张三\n".encode("gbk"))
    assert sniff_text_file(tiny).encoding == "gb18030"


def test_european_text_is_not_mistaken_for_gbk(tmp_path):
    path = write(tmp_path, "eu.csv", EUROPEAN.encode("cp1252"))
    assert sniff_text_file(path) == TextFormat("cp1252", ";", None)
    # Accented capitals followed by letters are valid GBK byte pairs; still Latin.
    names = "name\nÉlodie\nÅsa\nConceição\nMüller\n"
    assert (
        sniff_text_file(write(tmp_path, "names.csv", names.encode("cp1252"))).encoding == "cp1252"
    )


def cut_inside_char(header: bytes, row: bytes, char: bytes) -> bytes:
    """A file whose first SAMPLE_BYTES end after the first byte of ``char``."""
    body = header + row * ((SAMPLE_BYTES - len(header)) // len(row) - 1)
    body += b"9," + b"x" * (SAMPLE_BYTES - 1 - len(body) - 2)
    assert len(body) == SAMPLE_BYTES - 1
    return body + char + b"\n" + row * 100


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [("utf-8", TextFormat("utf-8", ",", "utf-8")), ("gbk", TextFormat("gb18030", ",", None))],
)
def test_character_cut_by_the_sample_is_not_an_error(tmp_path, encoding, expected):
    data = cut_inside_char(
        "id,name\n".encode(encoding), "1,客户张三\n".encode(encoding), "张".encode(encoding)
    )
    with pytest.raises(UnicodeDecodeError):
        data[:SAMPLE_BYTES].decode(encoding)
    assert sniff_text_file(write(tmp_path, "big.csv", data)) == expected


def test_native_latin1_only_when_the_whole_file_was_seen(tmp_path):
    head = "name;city\n" + "Müller;Köln\n" * (SAMPLE_BYTES // 12 + 10)
    path = write(tmp_path, "big.csv", head.encode("latin-1") + "Café;1,50 €\n".encode("cp1252"))
    fmt = sniff_text_file(path)
    # The € lies beyond the sample: DuckDB's latin-1 would fail on it, so transcode instead.
    assert fmt == TextFormat("cp1252", ";", None)


def test_explicit_encoding_is_used_and_normalized(tmp_path):
    gbk = write(tmp_path, "gbk.csv", GBK_ORDERS.encode("gbk"))
    assert sniff_text_file(gbk, encoding="GBK").encoding == "gb18030"
    assert sniff_text_file(gbk, encoding="gb2312 ").encoding == "gb18030"
    latin = write(tmp_path, "latin.csv", "a,b\nMüller,1\n".encode("latin-1"))
    assert sniff_text_file(latin, encoding="ISO-8859-1") == TextFormat("latin-1", ",", "latin-1")
    bom = write(tmp_path, "bom.csv", "a,b\n1,2\n".encode("utf-8-sig"))
    assert sniff_text_file(bom, encoding="utf8").encoding == "utf-8-sig"


def test_explicit_encoding_that_does_not_fit_names_line_and_detected_encoding(tmp_path):
    data = "id,name\n1,Smith\n2,张三\n".encode("gbk")
    path = write(tmp_path, "orders.csv", data)
    err = expect_error("error.encoding_mismatch", path, encoding="utf-8")
    assert err.params["line"] == 3
    assert err.params["offset"] == data.index(b"\xd5")
    assert err.params["detected"] == "gb18030"
    assert "--encoding gb18030" in err.message("en")


@pytest.mark.parametrize("name", ["klingon", "base64", "rot13"])
def test_unknown_encoding_name(tmp_path, name):
    path = write(tmp_path, "orders.csv", b"a,b\n1,2\n")
    err = expect_error("error.encoding_name", path, encoding=name)
    assert name in err.message("en")
    with pytest.raises(InputError, match=name):
        transcode_to_utf8(path, name, tmp_path / "out.csv")


def test_undecodable_file(tmp_path):
    data = b"id,name\n1,ok\n2,\x80\x81\x80\x81\x80\n"
    path = write(tmp_path, "orders.csv", data)
    err = expect_error("error.encoding_unknown", path)
    assert err.params["line"] == 3
    assert err.params["offset"] == data.index(b"\x80")


def test_bom_with_invalid_utf8_is_invalid(tmp_path):
    path = write(tmp_path, "orders.csv", codecs.BOM_UTF8 + b"a,b\n1,\xff\n")
    err = expect_error("error.encoding_invalid", path)
    assert (err.params["line"], err.params["offset"]) == (2, 9)


# --------------------------------------------------------------------------------------------
# Transcoding in chunks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "straddler"),
    [("gb18030", "张"), ("gb18030", "𠮷"), ("utf-16", "😀"), ("big5", "客"), ("utf-8", "客")],
)
def test_transcoding_multibyte_character_across_chunk_boundary(tmp_path, encoding, straddler):
    chunk = textfile.CHUNK_BYTES
    unit = 2 if encoding == "utf-16" else 1
    head = len("a,b\n".encode(encoding))  # with the BOM for utf-16
    text = "a,b\n" + "x" * ((chunk - unit - head) // unit)
    start = len(text.encode(encoding))
    assert start < chunk < start + len(straddler.encode(encoding)) - (2 if unit == 2 else 0)
    text += straddler + ",1\n" + "客人,2\n" * 200_000  # a few MB, several chunks
    path = write(tmp_path, "big.csv", text.encode(encoding))
    seen: list[tuple[int, int]] = []
    out = tmp_path / "out.csv"
    transcode_to_utf8(path, encoding, out, progress=lambda done, total: seen.append((done, total)))
    assert out.read_text(encoding="utf-8") == text
    size = path.stat().st_size
    assert len(seen) >= 3 and seen[-1] == (size, size)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_invalid_bytes_late_in_the_file(tmp_path):
    good = "id,name\n" + "1,张三\n" * (SAMPLE_BYTES // 7 + 50_000)  # beyond the sample
    data = good.encode("gbk") + b"2,\xff\xff\n3,ok\n"
    path = write(tmp_path, "orders.csv", data)
    fmt = sniff_text_file(path)  # the sample is clean GBK
    assert fmt.encoding == "gb18030"
    out = tmp_path / "out.csv"
    with pytest.raises(InputError) as info:
        transcode_to_utf8(path, fmt.encoding, out)
    err = info.value
    assert err.key == "error.encoding_invalid"
    assert err.params["offset"] == len(good.encode("gbk")) + 2
    assert err.params["line"] == good.count("\n") + 1
    assert "orders.csv" in err.message("en") and str(err.params["line"]) in err.message("zh")
    assert not out.exists()  # no half-written copy left behind


def test_truncated_character_at_end_of_file(tmp_path):
    data = "a,b\n1,张三\n".encode("gbk") + b"2,\xd5"
    path = write(tmp_path, "cut.csv", data)
    with pytest.raises(InputError) as info:
        transcode_to_utf8(path, "gb18030", tmp_path / "out.csv")
    assert info.value.key == "error.encoding_invalid"
    assert info.value.params["offset"] == len(data) - 1
    assert info.value.params["line"] == 3


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(alphabet=st.characters(codec="gb18030", exclude_characters="\r\x00"), min_size=1),
    encoding=st.sampled_from(["gb18030", "utf-16", "utf-8", "utf-16-be"]),
    chunk=st.integers(min_value=1, max_value=9),
)
def test_transcoding_any_text_with_tiny_chunks(tmp_path, monkeypatch, text, encoding, chunk):
    # Tiny chunks put a chunk boundary inside nearly every multibyte character.
    monkeypatch.setattr(textfile, "CHUNK_BYTES", chunk)
    path = write(tmp_path, "in.csv", text.encode(encoding))
    out = tmp_path / "out.csv"
    transcode_to_utf8(path, encoding, out)
    expected = text.removeprefix("\ufeff") if encoding != "utf-16" else text
    assert out.read_text(encoding="utf-8") == expected


# --------------------------------------------------------------------------------------------
# Delimiters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter(tmp_path, delimiter):
    rows = [["customer", "order", "date", "amount"], ["17850", "536365", "2011-12-09", "15.30"]]
    rows += [[str(i), str(536000 + i), "2011-12-10", f"{i}.5"] for i in range(20)]
    text = "\n".join(delimiter.join(r) for r in rows) + "\n"
    path = write(tmp_path, "orders.txt", text.encode())
    assert sniff_text_file(path).delimiter == delimiter
    assert sniff_text_file(path, delimiter=delimiter).delimiter == delimiter


def test_quoted_delimiters_inside_fields(tmp_path):
    # Every row has more commas inside quotes than real delimiters.
    semi = 'name;note;amount\n"Smith, John";"a, b, c, d";"1,50"\n"Doe, Jane";"x, y, z, w";"2,00"\n'
    assert sniff_text_file(write(tmp_path, "semi.csv", semi.encode())).delimiter == ";"
    comma = 'name,note\n"Smith; John","a;b;c|d"\n"Doe; Jane","multi\nline; note"\n"X","y"\n'
    assert sniff_text_file(write(tmp_path, "comma.csv", comma.encode())).delimiter == ","


def test_tab_separated_with_commas_in_text(tmp_path):
    text = "id\tname\tnote\n1\tSmith, John\tok\n2\tDoe, Jane\tfine, thanks\n"
    assert sniff_text_file(write(tmp_path, "x.tsv", text.encode())).delimiter == "\t"


def test_single_column_file_is_allowed(tmp_path):
    path = write(tmp_path, "emails.csv", b"email\na@example.com\nb@example.com\n")
    assert sniff_text_file(path) == TextFormat("utf-8", ",", "utf-8")


def test_tab_aliases(tmp_path):
    path = write(tmp_path, "x.tsv", b"a\tb\n1\t2\n")
    assert sniff_text_file(path, delimiter="\\t").delimiter == "\t"
    assert sniff_text_file(path, delimiter="TAB").delimiter == "\t"


def test_delimiter_mismatch(tmp_path):
    header = ";".join(f"col{i}" for i in range(8))
    text = header + "\n" + "\n".join(";".join(str(i * 10 + j) for j in range(8)) for i in range(5))
    path = write(tmp_path, "orders.csv", text.encode())
    err = expect_error("error.delimiter_mismatch", path, delimiter=",")
    message = err.message("en")
    assert "1 column with ','" in message and "8 columns with ';'" in message
    assert "--delimiter ';'" in message
    # A delimiter that is right, or a one-column file, is not a mismatch.
    assert sniff_text_file(path, delimiter=";").delimiter == ";"


def test_delimiter_invalid(tmp_path):
    path = write(tmp_path, "orders.csv", b"a:b\n1:2\n")
    err = expect_error("error.delimiter_invalid", path, delimiter=":")
    assert "':'" in err.message("en")


# --------------------------------------------------------------------------------------------
# Files that cannot be ingested
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"   \n\n\t \r\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf\n\n", b"\xff\xfe", b"\xff\xfe\n\x00"],
)
def test_empty_file(tmp_path, data):
    expect_error("error.file_empty", write(tmp_path, "orders.csv", data))


def test_header_only(tmp_path):
    expect_error("error.header_only", write(tmp_path, "orders.csv", "客户编号,订单号\n".encode()))
    expect_error("error.header_only", write(tmp_path, "blank.csv", b"a;b;c\n\n  \n"))


def _xlsx_bytes(tmp_path: Path) -> bytes:
    wb = openpyxl.Workbook()
    wb.active.append(["a", "b"])
    wb.save(tmp_path / "book.xlsx")
    return (tmp_path / "book.xlsx").read_bytes()


def _parquet_bytes(tmp_path: Path) -> bytes:
    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "t.parquet")
    return (tmp_path / "t.parquet").read_bytes()


def _sqlite_bytes(tmp_path: Path) -> bytes:
    con = sqlite3.connect(tmp_path / "t.db")
    con.execute("CREATE TABLE t (a)")
    con.commit()
    con.close()
    return (tmp_path / "t.db").read_bytes()


def _zip_bytes(tmp_path: Path) -> bytes:
    import zipfile

    with zipfile.ZipFile(tmp_path / "a.zip", "w") as zf:
        zf.writestr("orders.csv", "a,b\n1,2\n")
    return (tmp_path / "a.zip").read_bytes()


BINARIES = {
    "xlsx": (_xlsx_bytes, ".xlsx"),
    "zip": (_zip_bytes, "extract"),
    "parquet": (_parquet_bytes, ".parquet"),
    "sqlite": (_sqlite_bytes, "sqlite:///"),
    "xls": (lambda _: b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 500, ".xls"),
    "pdf": (lambda _: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF"),
    "image": (lambda _: b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG"),
    "gzip": (lambda _: gzip.compress(b"a,b\n1,2\n"), "gzip"),
}


@pytest.mark.parametrize("kind", sorted(BINARIES))
def test_binary_files_are_named(tmp_path, kind):
    make, hint = BINARIES[kind]
    path = write(tmp_path, "orders.csv", make(tmp_path))
    err = expect_error("error.file_binary", path)
    assert err.params["kind"] == kind
    assert hint in err.message("en")


def test_jpeg_is_an_image(tmp_path):
    err = expect_error(
        "error.file_binary", write(tmp_path, "a.csv", b"\xff\xd8\xff\xe0\x00\x10JFIF")
    )
    assert err.params["kind"] == "image"


def test_nul_bytes_are_binary(tmp_path):
    data = b"id,name\n1,abc\n2,\x00\x01\x02\x03 garbage\n"
    err = expect_error("error.file_binary", write(tmp_path, "orders.csv", data))
    assert err.params["kind"] == "nul"
    assert str(data.index(b"\x00")) in err.message("en")
    # Also when the user insists on an encoding.
    err = expect_error("error.file_binary", tmp_path / "orders.csv", encoding="latin-1")
    assert err.params["kind"] == "nul"


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as info:
        sniff_text_file(tmp_path / "nope.csv")
    assert info.value.key == "error.file_unreadable"
    assert "nope.csv" in info.value.message("en")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(alphabet=st.characters(codec="gb18030", exclude_characters="\r\x00")),
    encoding=st.sampled_from(["gb18030", "utf-8", "utf-8-sig"]),
    chunk=st.integers(min_value=1, max_value=9),
)
def test_error_position_with_tiny_chunks(tmp_path, monkeypatch, text, encoding, chunk):
    monkeypatch.setattr(textfile, "CHUNK_BYTES", chunk)
    good = text.removeprefix("\ufeff").encode(encoding)
    path = write(tmp_path, "in.csv", good + b"\xff\n" + "客\n".encode(encoding.replace("-sig", "")))
    with pytest.raises(InputError) as info:
        transcode_to_utf8(path, encoding, tmp_path / "out.csv")
    decoded = good.decode(encoding)
    assert info.value.params["offset"] == len(good)
    assert info.value.params["line"] == decoded.count("\n") + 1
