"""The JSON bodies of the API, as Pydantic models: what /docs shows, and what requests are checked against.

Request models are strict (no ``1`` for ``true``, no text for a number) and forbid other
keys; :func:`kit.server.forms.json_body` reads the raw body under its own limits (1 KiB,
``application/json`` only, unique keys, no NaN) before the model checks it. Response
models leave out what is not set (``private`` before the reveal, ``error`` on a scored row).
"""
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from kit.board.store import MAX_FINALS

_STRICT = ConfigDict(extra="forbid", strict=True)


class RevealRequest(BaseModel):
    """``{"revealed": true}`` ranks on the Private scores and closes; ``false`` hides them again."""

    model_config = _STRICT
    revealed: bool


class OpenRequest(BaseModel):
    """``{"open": false}`` closes submissions and choices of final submissions; ``true`` re-opens them."""

    model_config = _STRICT
    open: bool


class DeadlineRequest(BaseModel):
    """``{"deadline": "2026-06-30T23:59:00Z"}`` sets the deadline (no zone: UTC; a date alone: 23:59 UTC); null removes it."""

    model_config = _STRICT
    deadline: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$",
                                   json_schema_extra={"format": "date-time"})] | None


class FinalRequest(BaseModel):
    """``{"submissions": [ID, ...]}``: up to MAX_FINALS (2) of your scored submissions; ``[]`` takes the choice back."""

    model_config = _STRICT
    # The most is checked by the store (its message names it); the schema shows it.
    submissions: Annotated[list[Annotated[int, Field(gt=0, lt=1 << 62)]], Field(json_schema_extra={"maxItems": MAX_FINALS})]


class ErrorAnswer(BaseModel):
    """Every refusal: one line saying what was expected and what was found."""

    error: str


class RevealAnswer(BaseModel):
    revealed: bool


class OpenAnswer(BaseModel):
    open: bool
    state: str


class DeadlineAnswer(BaseModel):
    deadline: str | None
    state: str


class FinalAnswer(BaseModel):
    participant: str
    submissions: list[int]


class Info(BaseModel):
    """The competition's rules."""

    competition: str
    metric: str
    direction: str
    decimals: int
    rows: int
    max_daily_submissions: int | None
    timezone: str
    deadline: str | None
    max_upload_bytes: int
    state: str
    max_final_submissions: int


class LeaderboardRow(BaseModel):
    rank: int
    participant: str
    public: float | None
    entries: int
    model: str | None
    best_submitted_at: str | None
    last_submitted_at: str | None
    private: float | None = None
    public_rank: int | None = None
    basis: str | None = None


class Leaderboard(BaseModel):
    """The standings; once revealed, ranked on the Private scores (``private``, ``public_rank``, ``basis``)."""

    competition: str
    metric: str
    direction: str
    revealed: bool
    submissions: int
    rows: list[LeaderboardRow]
    state: str
    title: str
    subtitle: str


class SubmissionResult(BaseModel):
    """A scored submission: its Public score as shown, and what is left of today's allowance."""

    id: int
    participant: str
    public: float | None
    submitted_at: str
    remaining_today: int | None
    daily_limit: int | None
    sha256: str
    file: str
    rows: int
    warnings: list[str]


class HistoryRow(BaseModel):
    id: int | None
    submitted_at: str
    file: str
    sha256: str
    description: str | None
    status: str
    public: float | None
    rows: int | None
    by: str
    final: bool
    error: str | None = None
    private: float | None = None


class History(BaseModel):
    """Your (or your team's) submissions and failed attempts, in order of arrival."""

    participant: str
    team: str | None
    revealed: bool
    state: str
    remaining_today: int | None
    finals: list[int]
    submissions: list[HistoryRow]


def json_schema(model):
    """The ``openapi_extra`` of a route that reads its JSON body itself, so /docs shows ``model``.

    Examples
    --------
    >>> json_schema(OpenRequest)["requestBody"]["content"]["application/json"]["schema"]["required"]
    ['open']
    """
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": model.model_json_schema()}}}}
