"""The line-protocol encoder: known answers, escaping rules and invariants."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.lineprotocol import (
    MAX_TS_MS,
    MIN_TS_MS,
    LineProtocolError,
    _sample_line_checked,
    encode_batch,
    escape_measurement,
    escape_tag,
    event_line,
    format_float,
    format_int,
    quote_string,
    row_lines,
    sample_line,
    samples_body,
)
from storage.records import Event, Sample

FULL = Sample(
    "htx-dt",
    "dt-01",
    1_700_000_000_123,
    21.0812345678,
    106.5234567891,
    spraying=True,
    seq=42,
    alt_m=3.5,
    speed_mps=5.0,
    heading_deg=91.25,
    battery_pct=78.0,
    flow_lpm=1.8,
    tank_l=9.75,
    swath_m=5.0,
    fix="rtk_fixed",
)


def test_full_sample_known_answer() -> None:
    assert sample_line(FULL) == (
        "telemetry,coop=htx-dt,drone=dt-01 lat=21.0812345678,lon=106.5234567891,spraying=true,"
        "seq=42i,alt_m=3.5,speed_mps=5.0,heading_deg=91.25,battery_pct=78.0,flow_lpm=1.8,"
        'tank_l=9.75,swath_m=5.0,fix="rtk_fixed" 1700000000123'
    )


def test_bare_sample_has_only_the_required_fields() -> None:
    bare = Sample("htx", "dt-02", 5, 21.0, 106.0, spraying=False)
    assert sample_line(bare) == "telemetry,coop=htx,drone=dt-02 lat=21.0,lon=106.0,spraying=false 5"


def test_absent_optional_fields_are_left_out_not_written_empty() -> None:
    partial = replace(FULL, alt_m=None, tank_l=None, fix=None, seq=None)
    line = sample_line(partial)
    assert "alt_m" not in line
    assert "tank_l" not in line
    assert "fix" not in line
    assert "seq" not in line
    assert ",swath_m=5.0 1700000000123" in line


def test_event_known_answer_type_is_a_tag_and_attrs_sorted_json() -> None:
    event = Event("htx", "dt-01", 7, "refill", {"litres": 10.0, "by": 'Nam "B"'})
    assert event_line(event) == (
        'events,coop=htx,drone=dt-01,type=refill attrs="{\\"by\\":\\"Nam \\\\\\"B\\\\\\"\\",'
        '\\"litres\\":10.0}" 7'
    )


def test_event_without_attrs_still_has_a_field() -> None:
    assert event_line(Event("htx", "dt-01", 7, "takeoff")) == (
        'events,coop=htx,drone=dt-01,type=takeoff attrs="{}" 7'
    )


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("plain", "plain"),
        ("a,b", r"a\,b"),
        ("a b", r"a\ b"),
        ("a=b", r"a\=b"),
        ("đông triều,=", r"đông\ triều\,\="),
        ('quote"s', 'quote"s'),
        ("back\\slash", "back\\slash"),
    ],
)
def test_tag_escaping(raw: str, escaped: str) -> None:
    assert escape_tag(raw) == escaped


def test_measurement_escapes_commas_and_spaces_but_not_equals() -> None:
    assert escape_measurement("my meas,x=y") == r"my\ meas\,x=y"


@pytest.mark.parametrize("bad", ["", "dt\n01", "dt\r01", "ends\\", "a\\,b", "a\\=b", "a\\ b"])
def test_tags_that_line_protocol_cannot_carry_are_refused(bad: str) -> None:
    with pytest.raises(LineProtocolError):
        escape_tag(bad)


def test_a_bad_drone_id_error_names_the_sample() -> None:
    with pytest.raises(LineProtocolError, match=r"sample htx-dt/dt\n01 ts=1700000000123: drone"):
        sample_line(replace(FULL, drone="dt\n01"))


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("rtk_fixed", '"rtk_fixed"'),
        ('say "hi"', '"say \\"hi\\""'),
        ("C:\\dir\\", '"C:\\\\dir\\\\"'),
        ("\\", '"\\\\"'),
        ("two\nlines", '"two\nlines"'),
        ("a,b c=d", '"a,b c=d"'),
        ("", '""'),
    ],
)
def test_string_field_quoting(raw: str, quoted: str) -> None:
    assert quote_string(raw) == quoted


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (5.0, "5.0"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-5, "1e-05"),
        (1.5e20, "1.5e+20"),
        (5e-324, "5e-324"),
        (-2.0, "-2.0"),
        (7, "7.0"),
    ],
)
def test_floats_are_full_precision_and_never_integers(value: float, text: str) -> None:
    assert format_float(value) == text


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, True, "1.0", 10**400])
def test_non_finite_or_non_numbers_are_refused(bad: float) -> None:
    with pytest.raises(LineProtocolError, match="alt_m"):
        format_float(bad, "alt_m")


def test_nan_in_a_sample_is_refused_with_its_context() -> None:
    with pytest.raises(LineProtocolError, match=r"htx-dt/dt-01 ts=1700000000123: flow_lpm: nan"):
        sample_line(replace(FULL, flow_lpm=math.nan))


def test_an_overflowing_sum_still_encodes_exact_values() -> None:
    big = replace(FULL, alt_m=1.7e308, speed_mps=1.7e308)
    assert "alt_m=1.7e+308,speed_mps=1.7e+308," in sample_line(big)


def test_integers_carry_the_i_suffix_and_must_fit_int64() -> None:
    assert format_int(-(2**63)) == "-9223372036854775808i"
    assert format_int(2**63 - 1) == "9223372036854775807i"
    for bad in (2**63, -(2**63) - 1, 1.0, False):
        with pytest.raises(LineProtocolError):
            format_int(bad)  # type: ignore[arg-type]


def test_timestamps_outside_influx_range_are_refused() -> None:
    assert sample_line(replace(FULL, ts_ms=MAX_TS_MS)).endswith(f" {MAX_TS_MS}")
    assert sample_line(replace(FULL, ts_ms=MIN_TS_MS)).endswith(f" {MIN_TS_MS}")
    for bad in (MAX_TS_MS + 1, MIN_TS_MS - 1):
        with pytest.raises(LineProtocolError, match="time range"):
            sample_line(replace(FULL, ts_ms=bad))


def test_encode_batch_joins_lines_as_utf8() -> None:
    assert encode_batch(["a x=1.0 1", "đ x=2.0 2"]) == "a x=1.0 1\nđ x=2.0 2".encode()


def influx_scan_separators(line: str) -> list[str]:
    """The bare separators InfluxDB 1.x's scanner sees: a backslash escapes the next byte."""
    found, i = [], 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] in ",= ":
            found.append(line[i])
        i += 1
    return found


def influx_unescape_tag(text: str) -> str:
    """What InfluxDB 1.x stores for an escaped tag (models.unescapeTag)."""
    return text.replace("\\,", ",").replace("\\ ", " ").replace("\\=", "=")


@given(st.text(min_size=1).filter(lambda t: "\n" not in t and "\r" not in t))
def test_escaped_tags_scan_as_one_token_and_unescape_to_the_original(text: str) -> None:
    if re.search(r"\\([,= ]|$)", text):
        with pytest.raises(LineProtocolError, match="backslash"):
            escape_tag(text)
        return
    escaped = escape_tag(text)
    assert influx_scan_separators(escaped) == []
    assert influx_unescape_tag(escaped) == text


@given(st.text())
def test_quoted_strings_unescape_to_the_original(text: str) -> None:
    quoted = quote_string(text)
    assert quoted[0] == quoted[-1] == '"'
    inner = quoted[1:-1]
    assert re.search(r'(?<!\\)"', inner.replace("\\\\", "")) is None
    assert re.sub(r'\\(["\\])', r"\1", inner) == text


finite = st.floats(allow_nan=False, allow_infinity=False)
any_id = st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True)


def full_samples(
    coop: st.SearchStrategy[str], drone: st.SearchStrategy[str], fix: st.SearchStrategy[str]
) -> st.SearchStrategy[Sample]:
    """Samples with every field set to any finite value, ids and fix drawn as given."""
    return st.builds(
        Sample,
        coop=coop,
        drone=drone,
        ts_ms=st.integers(MIN_TS_MS, MAX_TS_MS),
        lat=finite,
        lon=finite,
        spraying=st.booleans(),
        seq=st.integers(-(2**63), 2**63 - 1),
        alt_m=finite,
        speed_mps=finite,
        heading_deg=finite,
        battery_pct=finite,
        flow_lpm=finite,
        tank_l=finite,
        swath_m=finite,
        fix=fix,
    )


@given(full_samples(coop=any_id, drone=any_id, fix=st.text()))
def test_fast_path_writes_exactly_what_the_checked_path_writes(sample: Sample) -> None:
    assert sample_line(sample) == _sample_line_checked(sample)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_parses_back_to_the_same_float(value: float) -> None:
    text = format_float(value)
    assert float(text) == value
    assert math.copysign(1.0, float(text)) == math.copysign(1.0, value)
    assert text[-1] != "i"


def _fields(line: str) -> tuple[str, dict[str, str], str]:
    """A line of ours split into series, fields (key -> text) and timestamp (no field of a
    sample holds a comma, space or ``=``: ``fix`` values are plain names in these tests)."""
    series, fields, ts = line.split(" ")
    return series, dict(f.split("=", 1) for f in fields.split(",")), ts


def _same_line(fast: str, slow: str) -> None:
    """Equal but for the spelling of floats, which must read back bit-exact."""
    series, fields, ts = _fields(fast)
    assert (series, ts) == _fields(slow)[::2]
    expected = _fields(slow)[1]
    assert list(fields) == list(expected)
    for key, text in fields.items():
        if expected[key].endswith("i") or expected[key][0] in '"tf':
            assert text == expected[key]
        else:
            value = float(expected[key])
            assert float(text) == value
            assert math.copysign(1.0, float(text)) == math.copysign(1.0, value)
            assert not text.endswith("i")


def test_a_body_of_full_samples_is_their_lines_joined_by_newlines() -> None:
    second = replace(FULL, ts_ms=FULL.ts_ms + 100, drone="dt-02", spraying=False)
    assert samples_body([FULL, second]).decode() == f"{sample_line(FULL)}\n{sample_line(second)}"


@given(
    full_samples(
        coop=st.sampled_from(["htx", "htx-dt", "c_1"]),
        drone=st.sampled_from(["dt-01", "d"]),
        fix=st.sampled_from(["rtk_fixed", "3d", "none"]),
    )
)
def test_the_body_encoder_writes_the_same_values_as_sample_line(sample: Sample) -> None:
    sample_line(sample)  # the series prefix is cached, as in a running worker
    _same_line(samples_body([sample]).decode(), sample_line(sample))


def test_samples_the_body_encoder_cannot_take_whole_go_through_sample_line() -> None:
    bare = Sample("htx", "dt-02", 5, 21.0, 106.0, spraying=False)
    odd_fix = replace(FULL, fix='a "b"')
    as_int = replace(FULL, alt_m=3)
    body = samples_body([bare, odd_fix, as_int]).decode()
    assert body.split("\n") == [sample_line(bare), sample_line(odd_fix), sample_line(as_int)]


def test_the_body_encoder_refuses_what_sample_line_refuses() -> None:
    with pytest.raises(LineProtocolError, match="flow_lpm"):
        samples_body([FULL, replace(FULL, flow_lpm=math.nan)])
    with pytest.raises(LineProtocolError, match="newlines"):
        samples_body([replace(FULL, drone="dt\n01")])


def _row(s: Sample) -> tuple[object, ...]:
    return (
        s.ts_ms,
        s.lat,
        s.lon,
        s.spraying,
        s.seq,
        s.alt_m,
        s.speed_mps,
        s.heading_deg,
        s.battery_pct,
        s.flow_lpm,
        s.tank_l,
        s.swath_m,
        s.fix,
    )


@given(
    st.lists(
        st.builds(
            Sample,
            coop=st.just("htx"),
            drone=st.just("dt-01"),
            ts_ms=st.integers(MIN_TS_MS, MAX_TS_MS),
            lat=finite,
            lon=finite,
            spraying=st.booleans(),
            seq=st.integers(0, 2**63 - 1),
            alt_m=finite,
            speed_mps=finite,
            heading_deg=finite,
            battery_pct=finite,
            flow_lpm=finite,
            tank_l=finite,
            swath_m=finite,
            fix=st.sampled_from(["rtk_fixed", "3d", "none", "2d", "dgps", "rtk_float"]),
        ),
        max_size=5,
    )
)
def test_row_lines_hold_the_same_values_as_sample_line(samples: list[Sample]) -> None:
    lines = row_lines("htx", "dt-01", [_row(s) for s in samples])
    assert len(lines) == len(samples)
    for line, sample in zip(lines, samples, strict=True):
        _same_line(line, sample_line(sample))


def test_row_lines_refuse_a_row_that_is_not_a_full_row_of_values() -> None:
    with pytest.raises(LineProtocolError, match="not a full row"):
        row_lines("htx", "dt-01", [(*_row(FULL)[:-1], "bogus")])
    with pytest.raises(LineProtocolError, match="not a full row"):
        row_lines("htx", "dt-01", [(*_row(FULL)[:5], math.inf, *_row(FULL)[6:])])
    with pytest.raises(LineProtocolError, match="newlines"):
        row_lines("htx", "dt\n01", [_row(FULL)])
