"""The gmina profile: the municipality-specific facts, loaded from a TOML file.

Nothing about a particular gmina is written in code; the bundled profile for
Konstancin-Jeziorna is only the default for `STRATEGIA_GMINA_PROFILE`.
"""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field

DEFAULT_PROFILE = "konstancin-jeziorna"


class DataController(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    address: str
    dpo_contact: str
    retention: str
    retention_en: str


class Localities(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    villages: tuple[str, ...] = ()


class PersonalDataRetention(BaseModel):
    """How long personal data outlives its purpose (days), per kind; a scheduled job in
    the owning service purges or anonymises what is older."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Email deliveries (address, message): long enough to answer "did you send it?".
    deliveries_days: int = Field(default=365, ge=1, le=3650)
    # An export's key: once deleted, the sealed answers on Kafka are unreadable.
    exports_days: int = Field(default=30, ge=1, le=365)


class GminaProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    name_en: str
    teryt: str = Field(pattern=r"^\d{7}$")
    powiat_teryt: str = Field(pattern=r"^\d{4}$")
    # How the powiat is named in alerts (CAP areaDesc); the TERYT code when not given.
    powiat_name: str = ""
    voivodeship_teryt: str = Field(pattern=r"^\d{2}$")
    timezone: str = "Europe/Warsaw"
    website: str
    strategy_email: str
    phones: tuple[str, ...] = ()
    controller: DataController
    localities: Localities = Localities()
    # IMGW hydrological basin codes (`kod_zlewni`, e.g. "Z_O_MA_2594") whose hydro warnings
    # concern the gmina; empty means no hydro warnings are ingested.
    imgw_basins: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,40}$")], ...] = ()
    personal_data: PersonalDataRetention = PersonalDataRetention()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def powiat_label(self) -> str:
        return self.powiat_name or f"powiat {self.powiat_teryt}"


@functools.cache
def load_profile(reference: str = DEFAULT_PROFILE) -> GminaProfile:
    """Load a profile by bundled name or by path to a TOML file (read once per process)."""
    path = Path(reference)
    if path.suffix == ".toml":
        text = path.read_text(encoding="utf-8")
    else:
        text = (resources.files("shared.gminas") / f"{reference}.toml").read_text("utf-8")
    return GminaProfile.model_validate(tomllib.loads(text))
