"""Track files: the column-wise fast paths read exactly what the row-by-row parsers read.

``parse_csv``/``parse_jsonl`` try a column-wise parse first and fall back to the row-by-row
parser for anything unusual; these tests hold the two to the same samples, and check that
unusual input still gets the row-by-row answer or its error naming the line.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fields import tracks
from fields.coverage import SampleArrays
from fields.tracks import TrackError, parse_csv, parse_jsonl

COLUMNS = ("ts_ms", "lat", "lon", "spraying", "flow_lpm", "swath_m", "drone", "fix")


def assert_same(a: SampleArrays, b: SampleArrays) -> None:
    for name in COLUMNS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        assert np.array_equal(x, y, equal_nan=True), name


def csv_text(rows: list[dict[str, str]], header: list[str]) -> str:
    names = ["ts", "lat", "lon", "spraying", *header]
    return "".join(
        ",".join(line) + "\n" for line in [names, *([r[h] for h in names] for r in rows)]
    )


numbers = st.floats(min_value=-80, max_value=80, allow_nan=False).map(repr)
optional = st.one_of(st.just(""), st.floats(min_value=0, max_value=50).map(repr), st.just("6"))
rows = st.fixed_dictionaries(
    {
        "ts": st.integers(min_value=0, max_value=2**53).map(str),
        "lat": numbers,
        "lon": numbers,
        "spraying": st.sampled_from(["true", "false", "1", "0", "TRUE", " False"]),
        "flow_lpm": optional,
        "swath_m": optional,
        "coop": st.sampled_from(["", "htx-a", "htx-b"]),
        "drone": st.sampled_from(["", "d1", "d2"]),
        "fix": st.sampled_from(["", "rtk_fixed", "3d", "none"]),
    }
)
extra_columns = st.lists(
    st.sampled_from(["flow_lpm", "swath_m", "coop", "drone", "fix"]), unique=True
)


@settings(max_examples=60, deadline=None)
@given(st.lists(rows, min_size=1, max_size=30), extra_columns)
def test_csv_fast_path_reads_what_the_row_by_row_parser_reads(
    samples: list[dict[str, str]], header: list[str]
) -> None:
    text = csv_text(samples, header)
    fast = tracks._fast_csv(text)
    assert fast is not None
    assert_same(fast, tracks._csv_rows(text, "<csv>"))


@settings(max_examples=60, deadline=None)
@given(st.lists(rows, min_size=1, max_size=30), extra_columns)
def test_jsonl_fast_path_reads_what_the_row_by_row_parser_reads(
    samples: list[dict[str, str]], keys: list[str]
) -> None:
    def sample(r: dict[str, str]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ts": int(r["ts"]),
            "lat": float(r["lat"]),
            "lon": float(r["lon"]),
            "spraying": r["spraying"].strip().lower() in ("true", "1"),
        }
        for k in keys:
            if r[k]:
                out[k] = float(r[k]) if k in ("flow_lpm", "swath_m") else r[k]
        return out

    text = "\n".join(json.dumps(sample(r)) for r in samples) + "\n"
    fast = tracks._fast_jsonl(text)
    assert fast is not None
    assert_same(fast, tracks._jsonl_rows(text, "<jsonl>"))


@pytest.mark.parametrize(
    "text",
    [
        'ts,lat,lon,spraying,drone\n1,21.08,106.52,true,"d,1"\n',  # quoted cell
        "ts,lat,lon,spraying\n1,21.08,106.52,true\n\n2,21.08,106.52,false\n",  # blank line
        "ts,lat,lon,spraying\n2025-11-28T07:00:00Z,21.08,106.52,1\n",  # RFC 3339
        "ts,lat,lon,spraying\r\n1,21.08,106.52,1\r\n2,21.08,106.53,0\r\n",  # CRLF (fast)
        "ts,lat,lon,spraying,flow_lpm\n1,21.08,106.52,1\n2,21.08,106.52,0,5\n",  # ragged
        "ts,lat,lon,spraying,ts\n1,21.08,106.52,1,7\n",  # duplicate column: the last wins
    ],
)
def test_unusual_csv_gets_the_row_by_row_answer(text: str) -> None:
    assert_same(parse_csv(text), tracks._csv_rows(text, "<csv>"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ts,lat,lon,spraying\n1,21.08,106.52,yes\n", "<csv> line 2: spraying 'yes'"),
        ("ts,lat,lon,spraying\n1,nan,106.52,1\n", "<csv> line 2: lat 'nan' is not finite"),
        ("ts,lat,lon,spraying,swath_m\n1,21.08,106.52,1,inf\n", "line 2: swath_m 'inf'"),
        ("ts,lat,lon,spraying\n1,21.08,,1\n", "<csv> line 2: missing lon"),
        ("ts,lat,lon,spraying,fix\n1,21.08,106.52,1,great\n", "line 2: fix 'great'"),
        ("ts,lat,lon,spraying\n-5x,21.08,106.52,1\n", "line 2: ts '-5x'"),
    ],
)
def test_bad_csv_cells_are_named_by_line_as_before(text: str, expected: str) -> None:
    with pytest.raises(TrackError, match=expected):
        parse_csv(text)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"ts": 1, "lat": 21.08, "lon": 106.52, "spraying": "yes"}', "spraying 'yes'"),
        ('{"ts": 1, "lat": true, "lon": 106.52, "spraying": true}', "lat True"),
        ('{"ts": 1.5, "lat": 21.08, "lon": 106.52, "spraying": true}', "ts 1.5"),
        ('{"ts": 1, "lat": 21.08, "lon": 106.52, "spraying": true}, {"ts": 2}', "not valid"),
        ('{"ts": 1, "lat": NaN, "lon": 106.52, "spraying": true}', "lat nan is not finite"),
        ('{"ts": 1, "lat": 21.08, "lon": 106.52, "spraying": 1.0}', "spraying 1.0"),
    ],
)
def test_bad_json_lines_are_named_by_line_as_before(line: str, expected: str) -> None:
    good = '{"ts": 0, "lat": 21.08, "lon": 106.52, "spraying": true}'
    with pytest.raises(TrackError, match=f"<jsonl> line 2: .*{expected}"):
        parse_jsonl(f"{good}\n{line}\n")


def test_json_lines_batches_and_string_numbers_get_the_row_by_row_answer() -> None:
    text = (
        '{"v": 1, "samples": [{"ts": 1, "lat": 21.08, "lon": 106.52, "spraying": true}]}\n'
        '{"ts": 2, "lat": "21.08", "lon": 106.52, "spraying": 1, "drone": 7}\n'
    )
    assert_same(parse_jsonl(text), tracks._jsonl_rows(text, "<jsonl>"))
    assert len(parse_jsonl(text)) == 2
