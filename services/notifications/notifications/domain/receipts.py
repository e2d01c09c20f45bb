"""Composing the receipt email a submitter gets after a `SubmissionReceived`.

Pure: the same event and gmina profile always give the same subject and bodies. The
wording lives in Jinja2 templates (`notifications/templates`), Polish first, English
when the submission was made in English. HTML templates autoescape, so nothing a
submitter or an official typed can inject markup; text templates are left verbatim.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

import jinja2

from notifications.domain.deliveries import ComposedEmail
from shared.contracts.intake import Language, SubmissionReceived
from shared.platform.gmina import GminaProfile

_ENGLISH_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

# receipt.{subject,txt,html}.j2: the layouts; strings/receipt.<lang>.txt.j2: the wording.
RECEIPT_TEMPLATES = "receipt"


@functools.lru_cache(maxsize=1024)
def _wrapped(
    environment: jinja2.Environment,
    text: str,
    width: int,
    break_long_words: bool,
    wrapstring: str | None,
    break_on_hyphens: bool,
) -> str:
    wrapped: str = jinja2.filters.do_wordwrap(
        environment, text, width, break_long_words, wrapstring, break_on_hyphens
    )
    return wrapped


@jinja2.pass_environment
def _wordwrap(
    environment: jinja2.Environment,
    text: str,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    """Jinja's `wordwrap`, remembered: most wrapped paragraphs (the RODO notice, the
    explanations) are the same in every email, and wrapping them (textwrap) was the
    largest part of composing a receipt."""
    return _wrapped(environment, text, width, break_long_words, wrapstring, break_on_hyphens)


@functools.cache
def template_environment() -> jinja2.Environment:
    environment = _environment()
    environment.filters["wordwrap"] = _wordwrap
    return environment


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("notifications", "templates"),
        # Escape everything except plain-text templates; unknown kinds fail safe.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",),
            disabled_extensions=("txt.j2", "subject.j2"),
            default=True,
        ),
        # A misspelt variable must fail loudly, never render as an empty string.
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # The templates ship inside the package and change only with a new release;
        # checking each file's modification time took a quarter of composing a receipt.
        auto_reload=False,
    )


def render_with_strings(prefix: str, context: dict[str, Any]) -> ComposedEmail:
    """Render `<prefix>.subject.j2`, `.txt.j2` and `.html.j2`, each given as `t` the
    wording of the language, `strings/<prefix>.<language>.txt.j2`, rendered once with the
    same context (each layout importing it re-rendered it three times per email)."""
    environment = template_environment()
    language = str(context["language"])
    wording = environment.get_template(f"strings/{prefix}.{language}.txt.j2").make_module(context)
    layout_context = {**context, "t": wording}

    def render(name: str) -> str:
        return environment.get_template(f"{prefix}.{name}").render(layout_context)

    return ComposedEmail(
        language=language,
        subject=single_line(render("subject.j2")),
        text_body=render("txt.j2"),
        html_body=render("html.j2"),
    )


def format_local_time(moment: datetime, profile: GminaProfile, language: Language) -> str:
    """`26.11.2026, 15:04` (pl) or `26 November 2026, 15:04` (en), in the gmina's zone."""
    local = moment.astimezone(profile.zone)
    if language == Language.EN:
        return f"{local.day} {_ENGLISH_MONTHS[local.month - 1]} {local.year}, {local:%H:%M}"
    return f"{local:%d.%m.%Y, %H:%M}"


def single_line(text: str) -> str:
    """Collapse whitespace: a subject is one header line (newlines would be rejected)."""
    return " ".join(text.split())


def receipt_context(event: SubmissionReceived, profile: GminaProfile) -> dict[str, Any]:
    language = Language(event.language)
    return {
        "language": language.value,
        "receipt_number": event.receipt_number,
        "consultation_title": event.consultation_title,
        "submission_title": event.title,
        "received_at": format_local_time(event.received_at, profile, language),
        "timezone": profile.timezone,
        "digest": event.digest,
        "gmina": profile,
        "controller": profile.controller,
    }


def compose_receipt(event: SubmissionReceived, profile: GminaProfile) -> ComposedEmail:
    return render_with_strings(RECEIPT_TEMPLATES, receipt_context(event, profile))
