"""Read a GeoJSON FeatureCollection one feature at a time, holding one feature (and a chunk of
the file) in memory rather than the whole document: a town's 100,000 plots are ~60 MB of
JSON and several times that as Python objects.

The standard library's JSON scanner decodes each feature (``JSONDecoder.raw_decode``); only
the top level is walked here. Syntax errors name the line, column and character offset.
"""

from __future__ import annotations

import codecs
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, Final, NoReturn

#: Bytes read at a time.
CHUNK_BYTES: Final = 1 << 20
#: Characters one feature may take: far above what the registry's limits let through
#: (20,000 positions and 16 kB of properties); past it the file is refused as unreadable.
MAX_FEATURE_CHARS: Final = 16 << 20

_WS: Final = re.compile(r"[ \t\n\r]*")


def _long_int(limit: int) -> re.Pattern[str]:
    """Where an integer of more than ``limit`` digits starts (not a float's digits)."""
    return re.compile(rf"-?\d{{{limit + 1},}}(?![\d.eE])")


class UnreadableFileError(ValueError):
    """The file is not a readable GeoJSON FeatureCollection (or Feature); the message says
    where (line, column, character offset) and why."""


class FeatureStream:
    """Iterates ``(index, feature)`` over a GeoJSON FeatureCollection (or one Feature) in a
    file; ``bytes_read`` says how far it got (for a progress bar), ``size`` how far it goes.

    Raises ``UnreadableFileError`` when the file cannot be read, is not valid JSON, or is
    not a FeatureCollection; features already yielded were read before the problem."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.size = path.stat().st_size
        except OSError:
            self.size = 0  # (reading it says why)
        self.bytes_read = 0
        self._file: BinaryIO | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._json = json.JSONDecoder()
        self._buf = ""
        self._pos = 0
        self._base = 0  # characters dropped before _buf
        self._base_lines = 0  # newlines dropped before _buf
        self._eof = False

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        try:
            with self.path.open("rb") as self._file:
                yield from self._document()
        except OSError as exc:
            raise UnreadableFileError(f"{self.path}: cannot read the file: {exc.strerror}") from exc

    # --- the document's top level --------------------------------------------------------

    def _document(self) -> Iterator[tuple[int, Any]]:
        if self._peek() == "\ufeff":  # a UTF-8 byte order mark, as some GIS tools write
            self._pos += 1
        if self._peek() != "{":
            self._fail("expected a GeoJSON object ('{') at the top level")
        self._pos += 1
        top: dict[str, Any] = {}
        count = 0
        saw_features = False
        while True:
            char = self._peek()
            if char == "}":
                self._pos += 1
                break
            if top or saw_features:
                if char != ",":
                    self._fail("expected ',' or '}' between the members of the top-level object")
                self._pos += 1
                char = self._peek()
            if char != '"':
                self._fail("expected a member name in double quotes")
            key = self._value()
            if self._peek() != ":":
                self._fail("expected ':' after a member name")
            self._pos += 1
            if key == "features" and self._peek() == "[":
                saw_features = True
                for feature in self._array():
                    yield count, feature
                    count += 1
            else:
                top[str(key)] = self._value()
        if self._single(top, saw_features, count):
            yield 0, top

    def _single(self, top: dict[str, Any], saw_features: bool, count: int) -> bool:
        """Whether the document was one Feature (``top``), after checking what followed the
        top-level object and that a FeatureCollection held features."""
        if self._peek() != "":
            self._fail("extra data after the GeoJSON object")
        kind = top.get("type")
        if kind == "Feature" and not saw_features:
            return True
        if kind != "FeatureCollection":
            self._fail(f"top-level type is {kind!r}; expected 'FeatureCollection' or 'Feature'")
        if not saw_features:
            self._fail("FeatureCollection has no 'features' list")
        if count == 0:
            self._fail("FeatureCollection holds no features")
        return False

    def _array(self) -> Iterator[Any]:
        self._pos += 1  # '['
        if self._peek() == "]":
            self._pos += 1
            return
        while True:
            yield self._value()
            char = self._peek()
            self._pos += 1
            if char == "]":
                return
            if char != ",":
                self._pos -= 1
                self._fail("expected ',' or ']' between features")

    # --- scanning --------------------------------------------------------------------------

    def _value(self) -> Any:
        """The JSON value at the current position (skipping whitespace first), reading more
        of the file while the value runs past what is read."""
        self._peek()
        while True:
            try:
                value, end = self._json.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if self._eof or len(self._buf) - self._pos > MAX_FEATURE_CHARS:
                    self._fail(f"not valid JSON: {exc.msg}", at=exc.pos)
                self._read()
                continue
            except RecursionError:
                self._fail("JSON nested too deeply to read")
            except ValueError as exc:
                # Not a syntax error: an integer too long for Python to convert (more than
                # ``sys.get_int_max_str_digits()`` digits); more of the file cannot help.
                limit = sys.get_int_max_str_digits()
                if not limit:
                    self._fail(f"not valid JSON: {exc}")
                at = _long_int(limit).search(self._buf, self._pos)
                self._fail(
                    f"not valid JSON: a number with more than {limit} digits",
                    at=None if at is None else at.start(),
                )
            self._pos = end
            return value

    def _peek(self) -> str:
        """The next character that is not whitespace ("" at the end of the file)."""
        while True:
            self._pos = _WS.match(self._buf, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._buf) or self._eof:
                return self._buf[self._pos : self._pos + 1]
            self._read()

    def _read(self) -> None:
        """Append the next chunk of the file, dropping what was already scanned."""
        if self._pos > CHUNK_BYTES:
            self._base_lines += self._buf.count("\n", 0, self._pos)
            self._base += self._pos
            self._buf = self._buf[self._pos :]
            self._pos = 0
        assert self._file is not None
        data = self._file.read(CHUNK_BYTES)
        self.bytes_read += len(data)
        self._eof = not data
        try:
            self._buf += self._decoder.decode(data, final=self._eof)
        except UnicodeDecodeError as exc:
            self._fail(f"not UTF-8 text near byte {self.bytes_read - len(data) + exc.start}")

    def _fail(self, problem: str, at: int | None = None) -> NoReturn:
        pos = self._pos if at is None else at
        line = self._base_lines + self._buf.count("\n", 0, pos) + 1
        newline = self._buf.rfind("\n", 0, pos)
        where = f"line {line}"
        if newline >= 0 or not self._base:  # (else the line began in a dropped chunk)
            where += f", column {pos - newline}"
        raise UnreadableFileError(
            f"{self.path}: {problem} at {where} (character {self._base + pos})"
        )
