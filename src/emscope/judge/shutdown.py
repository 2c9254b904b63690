"""Provider shutdown dates of API models: warn before a run, refuse after the date.

OpenAI retires gpt-4o-2024-08-06, gpt-4o-mini and every fine-tune built on them on 2027-01-14
(protocol §3); its models endpoint (``GET /v1/models/{id}``) may carry a ``shutdown_date`` per
model. Before a run (study load, judge construction on the command line) every API judge or
model is checked:

- the endpoint is asked first (when it can be: a key is set, or it is a local server); a date it
  gives wins;
- otherwise :data:`KNOWN_SHUTDOWN_DATES` (emscope's built-in table, checked against OpenAI's
  deprecations page) is used;
- before the date: a warning naming the date, its source and the route that outlives it; on or
  after it: :class:`ModelShutDown`, an error with the same text.

The clock is injectable (``today``) so tests can stand on either side of the date.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from emscope.errors import EmscopeError
from emscope.sample.openai_compat import ApiEndpoint

log = logging.getLogger(__name__)

Today = Callable[[], dt.date]
GPT4O_SHUTDOWN = dt.date(2027, 1, 14)
KNOWN_SHUTDOWN_DATES: dict[str, dt.date] = {
    "gpt-4o-2024-08-06": GPT4O_SHUTDOWN,
    "gpt-4o-mini": GPT4O_SHUTDOWN,
    "gpt-4o-mini-2024-07-18": GPT4O_SHUTDOWN,
}
# Fine-tunes are named ft:<base>:<org>:<suffix>:<id>; they go with their base model.
_FINE_TUNE_BASES = ("gpt-4o-mini", "gpt-4o-mini-2024-07-18", "gpt-4o-2024-08-06")
OUTLIVING_ROUTE = (
    "judge with an open-weight model scored exactly (exact-local:<model> or "
    "exact-http:<model>@<url>) and bridge it to GPT-4o's scale with "
    "`emscope judge calibrate --fit` on answers GPT-4o already scored "
    "(docs/judging-after-gpt4o.md)"
)


class ModelShutDown(EmscopeError):
    """An API model is past its provider's shutdown date."""


@dataclass(frozen=True)
class ShutdownDate:
    """A model's shutdown date and where it was read (``endpoint`` or ``built-in table``)."""

    model: str
    date: dt.date
    source: str


def known_shutdown_date(model: str) -> dt.date | None:
    """The built-in table's date for ``model`` or for the base of an ``ft:`` fine-tune.

    >>> known_shutdown_date("ft:gpt-4o-mini-2024-07-18:acme::abc123")
    datetime.date(2027, 1, 14)
    >>> known_shutdown_date("gpt-5") is None
    True
    """
    if model in KNOWN_SHUTDOWN_DATES:
        return KNOWN_SHUTDOWN_DATES[model]
    if model.startswith("ft:"):
        base = model.split(":")[1]
        if base in _FINE_TUNE_BASES:
            return KNOWN_SHUTDOWN_DATES[base]
    return None


def parse_shutdown_date(value: Any) -> dt.date | None:
    """A ``shutdown_date`` field: an ISO date/datetime string or Unix seconds; None if absent.

    >>> parse_shutdown_date("2027-01-14"), parse_shutdown_date(1799884800)
    (datetime.date(2027, 1, 14), datetime.date(2027, 1, 14))
    """
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(float(value), tz=dt.UTC).date()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def endpoint_shutdown_date(endpoint: ApiEndpoint) -> dt.date | None:
    """The ``shutdown_date`` the endpoint lists for its model (None: none, or not reachable).

    Asked only when it can be (a key is set, or a local server); a failed request is logged
    and treated as "no date from the endpoint", so the built-in table still applies.
    """
    try:
        client = endpoint.sync_client()
    except EmscopeError:
        return None
    try:
        listed = client.models.retrieve(endpoint.model).model_dump(mode="json", warnings=False)
    except Exception as exc:  # any transport or HTTP error: the table still decides
        log.info("could not read %s's model listing: %s", endpoint.host, type(exc).__name__)
        return None
    finally:
        client.close()
    return parse_shutdown_date(listed.get("shutdown_date"))


def shutdown_date(
    endpoint: ApiEndpoint, *, ask: Callable[[ApiEndpoint], dt.date | None] | None = None
) -> ShutdownDate | None:
    """The model's shutdown date: the endpoint's if it lists one, else the built-in table's."""
    listed = (ask or endpoint_shutdown_date)(endpoint)
    if listed is not None:
        return ShutdownDate(endpoint.model, listed, f"{endpoint.host} /v1/models")
    known = known_shutdown_date(endpoint.model)
    if known is not None:
        return ShutdownDate(endpoint.model, known, "emscope's built-in table of known dates")
    return None


def check_shutdown(
    endpoint: ApiEndpoint,
    *,
    role: str = "judge",
    today: Today = dt.date.today,
    ask: Callable[[ApiEndpoint], dt.date | None] | None = None,
) -> str | None:
    """A warning before the model's shutdown date, :class:`ModelShutDown` on or after it."""
    found = shutdown_date(endpoint, ask=ask)
    if found is None:
        return None
    now = today()
    where = f"{role} model {found.model!r} at {endpoint.host}"
    if now >= found.date:
        raise ModelShutDown(
            f"{where} was shut down on {found.date.isoformat()} (date from {found.source}); "
            f"to keep judging: {OUTLIVING_ROUTE}"
        )
    days = (found.date - now).days
    return (
        f"{where} shuts down on {found.date.isoformat()} ({days} days left; date from "
        f"{found.source}); the route that outlives it: {OUTLIVING_ROUTE}"
    )


def check_judge_specs(
    specs: Iterable[str],
    *,
    today: Today = dt.date.today,
    ask: Callable[[ApiEndpoint], dt.date | None] | None = None,
) -> list[str]:
    """Warnings for the API judges among ``specs``; raises for one past its shutdown date."""
    from emscope.judge.registry import judge_kind, parse_judge_spec

    warnings = []
    for spec in specs:
        parsed = parse_judge_spec(spec)
        if not judge_kind(parsed).calls_an_api or parsed.model is None:
            continue
        endpoint = ApiEndpoint(model=parsed.model, base_url=parsed.base_url)
        warning = check_shutdown(endpoint, role="judge", today=today, ask=ask)
        if warning is not None:
            warnings.append(warning)
    return warnings
