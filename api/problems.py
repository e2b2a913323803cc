"""Refusals of a GeoJSON import that list their problems both ways: the English ``detail``
API clients read (unchanged), and ``coded_problems`` beside it, each problem's code and
parameters (``fields.registry.FieldProblem``), for a page to say it in its user's language."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import HTTPException

from fields.registry import FieldProblem


class ProblemsError(HTTPException):
    """An ``HTTPException`` whose answer also carries ``coded_problems``."""

    def __init__(self, status_code: int, detail: Any, problems: Iterable[FieldProblem]) -> None:
        super().__init__(status_code, detail=detail)
        self.coded = [p.to_dict() for p in problems]
