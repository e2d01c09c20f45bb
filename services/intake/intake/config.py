"""Settings of the intake service (environment variables `STRATEGIA_*`)."""

from __future__ import annotations

from pydantic import Field

from shared.platform.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    database_url: str = "postgresql://intake@127.0.0.1:55432/intake"
    http_port: int = 8001
    # How often the scheduler looks for consultations due to open or close (upper bound;
    # it also sleeps exactly until the next due moment when that comes sooner).
    scheduler_interval_seconds: float = Field(default=30.0, gt=0)
    # A paper form's received_on may lie at most this many days before it is typed in.
    paper_max_age_days: int = Field(default=14, ge=0, le=366)
    # Services holding personal data: each must answer a data-subject request before it
    # counts as complete (erasure confirmed, export downloadable).
    privacy_services: tuple[str, ...] = ("intake", "groups", "notifications", "news")
    # Region of phone numbers in erasure and export requests given without a country code.
    phone_region: str = "PL"
