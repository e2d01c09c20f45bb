"""Settings of the groups service (environment variables `STRATEGIA_*`)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator

from shared.platform.settings import ServiceSettings


class GroupsSettings(ServiceSettings):
    database_url: str = "postgresql://groups@127.0.0.1:55432/groups"
    http_port: int = 8002

    # A theme's group forms at the minimum and takes at most the maximum (seed: 3–12).
    group_min_size: int = Field(default=3, ge=1, le=100)
    group_max_size: int = Field(default=12, ge=1, le=100)

    # Lifetimes of emailed links and of a member's session. The volunteer-messages topic
    # keeps its events (which carry link secrets) 48 h: no link may live longer.
    confirmation_link_hours: float = Field(default=48.0, gt=0, le=48)
    withdrawal_link_hours: float = Field(default=48.0, gt=0, le=48)
    sign_in_link_hours: float = Field(default=24.0, gt=0, le=48)
    session_hours: float = Field(default=12.0, gt=0, le=24 * 30)

    # Key trends: nothing is computed below this many submissions in a theme.
    trend_min_submissions: int = Field(default=10, ge=2)
    # The trends worker's fallback poll (it also wakes on NOTIFY when a theme changes).
    trend_poll_seconds: float = Field(default=5.0, gt=0)
    # How often expired sessions and link tokens are deleted.
    housekeeping_interval_seconds: float = Field(default=3600.0, gt=0)
    # Possible duplicates: cosine similarity of lemma counts at or above this.
    duplicate_threshold: float = Field(default=0.5, gt=0, le=1)
    # Default region for phone numbers written without a country code.
    phone_region: str = Field(default="PL", pattern=r"^[A-Z]{2}$")

    @model_validator(mode="after")
    def _sizes(self) -> GroupsSettings:
        if self.group_max_size < self.group_min_size:
            raise ValueError("group_max_size must be at least group_min_size")
        return self

    @property
    def confirmation_link_lifetime(self) -> timedelta:
        return timedelta(hours=self.confirmation_link_hours)

    @property
    def withdrawal_link_lifetime(self) -> timedelta:
        return timedelta(hours=self.withdrawal_link_hours)

    @property
    def sign_in_link_lifetime(self) -> timedelta:
        return timedelta(hours=self.sign_in_link_hours)

    @property
    def session_lifetime(self) -> timedelta:
        return timedelta(hours=self.session_hours)
