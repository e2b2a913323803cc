"""The bridge's disk spool: order, crash safety and drain bookkeeping (real files, no mocks)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adapters.spool import Spool, SpoolError, SpoolFullError

REPO = Path(__file__).resolve().parents[2]


def fill(spool: Spool, n: int, start: int = 0) -> list[int]:
    return [
        spool.append(f"agri/v1/c/d/telemetry/{i}", f"payload-{i}".encode())
        for i in range(start, start + n)
    ]


def drain(spool: Spool, limit: int = 1000) -> list[tuple[int, str, bytes]]:
    return [(r.id, r.topic, r.payload) for r in spool.take(limit)]


def segments(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.seg"))


def test_records_come_out_oldest_first_with_their_topic_and_payload(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        ids = fill(spool, 5)
        assert ids == [0, 1, 2, 3, 4]
        out = drain(spool, 3) + drain(spool, 10)
    assert [r[0] for r in out] == ids
    assert out[2] == (2, "agri/v1/c/d/telemetry/2", b"payload-2")


def test_a_taken_record_is_not_handed_out_twice_until_rewound(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        fill(spool, 4)
        first = drain(spool, 2)
        assert [r[0] for r in drain(spool, 1)] == [2]
        spool.ack(first[0][0])
        assert spool.rewind() == 2  # records 1 and 2 were taken, not acknowledged
        assert [r[0] for r in drain(spool)] == [1, 2, 3]
        assert drain(spool) == []


def test_committed_acks_survive_a_reopen_and_nothing_else_is_lost(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        fill(spool, 6)
        for rid, _t, _p in drain(spool):
            if rid in (0, 1, 3):  # 3 acked out of order: 2 still holds the mark back
                spool.ack(rid)
    with Spool(tmp_path) as spool:
        assert spool.report.pending == 4
        assert [r[0] for r in drain(spool)] == [2, 3, 4, 5]


def test_acks_without_commit_are_sent_again_after_a_crash(tmp_path: Path) -> None:
    crash = (
        "import os, sys; from pathlib import Path; from adapters.spool import Spool\n"
        "spool = Spool(Path(sys.argv[1]))\n"
        "for i in range(3): spool.append('t', b'%d' % i)\n"
        "for r in spool.take(10): spool.ack(r.id)\n"
        "os._exit(0)  # dies without commit or close\n"
    )
    subprocess.run([sys.executable, "-c", crash, str(tmp_path)], check=True, cwd=REPO)
    with Spool(tmp_path) as again:
        assert [r[2] for r in drain(again)] == [b"0", b"1", b"2"]


def test_new_records_after_a_reopen_continue_the_numbering(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        fill(spool, 3)
        for rid, _t, _p in drain(spool, 2):
            spool.ack(rid)
    with Spool(tmp_path) as spool:
        assert fill(spool, 2, start=3) == [3, 4]
        assert [(r[0], r[2]) for r in drain(spool)] == [
            (2, b"payload-2"),
            (3, b"payload-3"),
            (4, b"payload-4"),
        ]


@pytest.mark.parametrize("cut", [1, 4, 8, 11])
def test_a_torn_last_record_is_ignored_and_cut_off(tmp_path: Path, cut: int) -> None:
    with Spool(tmp_path) as spool:
        fill(spool, 3)
    seg = segments(tmp_path)[-1]
    whole = seg.read_bytes()
    seg.write_bytes(whole[:-cut])  # a crash in the middle of the last append
    with Spool(tmp_path) as spool:
        assert spool.report.torn_bytes == len(whole) // 3 - cut  # three records of one size
        assert [r[2] for r in drain(spool)] == [b"payload-0", b"payload-1"]
        assert spool.append("t", b"after") == 2
        assert [r[2] for r in drain(spool)] == [b"after"]
    with Spool(tmp_path) as spool:
        assert [r[2] for r in drain(spool)] == [b"payload-0", b"payload-1", b"after"]


def test_a_last_record_with_a_bad_checksum_is_ignored(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        fill(spool, 2)
    seg = segments(tmp_path)[-1]
    data = bytearray(seg.read_bytes())
    data[-1] ^= 0xFF
    seg.write_bytes(bytes(data))
    with Spool(tmp_path) as spool:
        assert [r[2] for r in drain(spool)] == [b"payload-0"]
        assert spool.report.torn_bytes > 0


def test_corruption_in_an_older_segment_skips_only_its_rest(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=60) as spool:
        fill(spool, 6)
    segs = segments(tmp_path)
    assert len(segs) >= 3
    first = segs[0]
    with Spool(tmp_path, segment_bytes=60) as intact:
        assert len(intact.take(1000)) == 6
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF
    first.write_bytes(bytes(data))
    with Spool(tmp_path, segment_bytes=60) as spool:
        assert spool.report.corrupt_segments == (first.name,)
        got = [r[2] for r in drain(spool)]
    assert len(got) == 5
    assert b"payload-5" in got


def test_wholly_acknowledged_segments_are_deleted_on_commit(tmp_path: Path) -> None:
    with Spool(tmp_path, segment_bytes=60) as spool:
        fill(spool, 8)
        before = len(segments(tmp_path))
        for rid, _t, _p in drain(spool):
            spool.ack(rid)
        spool.commit()
        assert len(segments(tmp_path)) == 1  # only the one still being written
        assert before > 1
        assert spool.size_bytes == segments(tmp_path)[0].stat().st_size
    with Spool(tmp_path) as spool:
        assert spool.report.pending == 0
        assert segments(tmp_path) == []  # fully acknowledged: gone at open


def test_the_size_limit_refuses_new_records_and_keeps_the_old(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=130) as spool:
        fill(spool, 3)
        with pytest.raises(SpoolFullError, match="limit of 130"):
            spool.append("t", b"x" * 50)
        assert spool.unacked == 3


def test_an_unusable_mark_file_is_an_error_naming_it(tmp_path: Path) -> None:
    (tmp_path / "acked").write_text("banana")
    with pytest.raises(SpoolError, match="acked holds 'banana'"):
        Spool(tmp_path)


def test_a_second_spool_on_the_same_folder_is_refused_until_the_first_closes(
    tmp_path: Path,
) -> None:
    first = Spool(tmp_path)
    with pytest.raises(SpoolError, match="in use by another process"):
        Spool(tmp_path)
    first.close()
    with Spool(tmp_path) as again:
        assert again.pending == 0
