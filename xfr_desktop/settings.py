"""The examiner's preferences: a typed model with a schema version and a migration.

``Settings`` is a plain dataclass; ``load_settings`` / ``save_settings`` move it to
and from a ``QSettings`` store.  The default store is an INI file in the user's
config folder (on Linux ``$XDG_CONFIG_HOME/XFR/XFR Desktop.ini``, normally
``~/.config/XFR/XFR Desktop.ini``).  Tests redirect ``XDG_CONFIG_HOME`` to a temporary
folder, so they never read or write the examiner's real settings.

Every stored value is validated on load: a value this version does not understand
falls back to its default (an unknown device or theme, a threshold that is not a
positive finite number) instead of stopping the application.  Settings never hold
case data; they only remember where recent cases were.

Schema versions (the stored ``schema_version`` key; none stored means version 0):

* **0** - early builds: recent cases were one flat key ``recent`` holding the
  folders separated by ``;``; no other key differs.
* **1** - the current model: ``recent_cases`` is a list, ``schema_version = 1``.

``migrate(raw, from_version)`` turns the raw key/value mapping of an older version
into the current one; ``save_settings`` then writes version 1 and removes the keys
that only older versions used.  A store written by a *newer* version is read as far
as this version understands it.
"""

from __future__ import annotations

import dataclasses
import getpass
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QStandardPaths

from core.colours import COLOUR_MAPS
from core.models.ids import DEFAULT_MODEL_ID

ORGANISATION = "XFR"  # the same names as xfr_desktop.app: one settings folder
APPLICATION = "XFR Desktop"

SCHEMA_VERSION = 1
DEVICES = ("auto", "cpu", "cuda")
THEMES = ("light", "dark")
MAX_RECENT = 10
DEFAULT_OPACITY = 0.6

# Keys written by older schema versions; save_settings removes them.
LEGACY_KEYS = ("recent",)
V0_RECENT_SEPARATOR = ";"


def login_name() -> str:
    """The operating system's name for the logged-in user, or ``"unknown"``."""
    try:
        name = getpass.getuser()
    except Exception:  # no login name (some containers): still name someone
        return "unknown"
    return name or "unknown"


def _normalised(path: str | os.PathLike[str]) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


@dataclass
class Settings:
    """What the examiner can set in the Settings dialog (all fields validated).

    ``threshold`` None means "use the model's own threshold"; ``user_name`` empty
    means "the case's examiner" (see ``effective_user``); ``recent_cases`` is most
    recent first, at most ``MAX_RECENT`` entries, and may name folders that no
    longer exist (``existing_recent_cases`` leaves those out).
    """

    device: str = "auto"
    model_id: str = DEFAULT_MODEL_ID
    threshold: float | None = None
    colour_map: str = "jet"
    user_name: str = ""
    theme: str = "light"
    recent_cases: list[str] = field(default_factory=list)
    overlay_opacity: float = DEFAULT_OPACITY
    sync_views: bool = True
    schema_version: int = SCHEMA_VERSION

    def effective_user(self) -> str:
        """The name audit entries record when set; empty: the case's examiner
        (the store records the login name beside it in every entry)."""
        return self.user_name.strip()

    def add_recent(self, path: str | os.PathLike[str]) -> None:
        """Put ``path`` first in ``recent_cases`` (no duplicates, at most 10)."""
        new = _normalised(path)
        rest = [p for p in self.recent_cases if _normalised(p) != new]
        self.recent_cases = [new, *rest][:MAX_RECENT]

    def existing_recent_cases(self) -> list[str]:
        """``recent_cases`` without the folders that no longer exist."""
        return [p for p in self.recent_cases if Path(p).exists()]

    def copy(self) -> Settings:
        """An independent copy (the list is not shared)."""
        return dataclasses.replace(self, recent_cases=list(self.recent_cases))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Settings:
        """Settings from current-schema values of any type; bad values -> default."""
        defaults = cls()
        return cls(
            device=_choice(raw.get("device"), DEVICES, defaults.device),
            model_id=_text(raw.get("model_id")) or defaults.model_id,
            threshold=_threshold(raw.get("threshold")),
            colour_map=_choice(raw.get("colour_map"), COLOUR_MAPS, defaults.colour_map),
            user_name=_text(raw.get("user_name")),
            theme=_choice(raw.get("theme"), THEMES, defaults.theme),
            recent_cases=_recent(raw.get("recent_cases")),
            overlay_opacity=_opacity(raw.get("overlay_opacity")),
            sync_views=_flag(raw.get("sync_views"), defaults.sync_views),
            schema_version=SCHEMA_VERSION,
        )


# ---- validation of stored values (INI files give back strings) -------------------
def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _choice(value: Any, allowed: tuple[str, ...], default: str) -> str:
    text = _text(value).lower()
    return text if text in allowed else default


def _number(value: Any) -> float | None:
    if isinstance(value, bool):  # True is not a threshold
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _threshold(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _opacity(value: Any) -> float:
    number = _number(value)
    if number is None or not 0.0 <= number <= 1.0:
        return DEFAULT_OPACITY
    return number


def _flag(value: Any, default: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value != 0
    text = _text(value).lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    return default


def _recent(value: Any) -> list[str]:
    if isinstance(value, str):  # an INI list of one item reads back as a string
        value = [value]
    if not isinstance(value, list | tuple):
        return []
    recent = Settings(recent_cases=[])
    for path in reversed([p.strip() for p in value if isinstance(p, str)]):
        if path:
            recent.add_recent(path)  # keeps the order, drops duplicates, caps
    return recent.recent_cases


# ---- schema migration -------------------------------------------------------------
def stored_version(raw: Mapping[str, Any]) -> int:
    """The schema version a raw mapping was written with (0 when none is stored)."""
    number = _number(raw.get("schema_version", 0))
    return int(number) if number is not None and number >= 0 else 0


def migrate(raw: Mapping[str, Any], from_version: int) -> dict[str, Any]:
    """Raw stored values of schema ``from_version`` -> raw values of the current one.

    v0 -> v1: the flat key ``recent`` (folders joined by ``;``) becomes the list
    ``recent_cases`` (an existing ``recent_cases`` wins); ``recent`` is dropped.
    Values are not validated here (``Settings.from_dict`` does that).  The input
    mapping is not changed.
    """
    values = dict(raw)
    if from_version < 1:
        legacy = values.pop("recent", None)
        if "recent_cases" not in values and isinstance(legacy, str):
            values["recent_cases"] = [
                p.strip() for p in legacy.split(V0_RECENT_SEPARATOR) if p.strip()
            ]
        elif "recent_cases" not in values and isinstance(legacy, list):
            # An INI value with commas reads back as a list: join it back up.
            joined = ",".join(str(p) for p in legacy)
            values["recent_cases"] = [
                p.strip() for p in joined.split(V0_RECENT_SEPARATOR) if p.strip()
            ]
    values["schema_version"] = SCHEMA_VERSION
    return values


# ---- the store ----------------------------------------------------------------------
def default_store() -> QSettings:
    """``QSettings`` in INI format in the user config folder.

    Qt reads the config folder (``XDG_CONFIG_HOME`` on Linux) once per process and
    caches it; setting the path from ``QStandardPaths`` here, on every call, makes
    the store follow the environment (tests change it between test cases).
    """
    config_dir = QStandardPaths.writableLocation(
        QStandardPaths.StandardLocation.GenericConfigLocation
    )
    if config_dir:
        QSettings.setPath(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, config_dir
        )
    return QSettings(
        QSettings.Format.IniFormat,
        QSettings.Scope.UserScope,
        ORGANISATION,
        APPLICATION,
    )


_FIELDS = tuple(f.name for f in dataclasses.fields(Settings))


def load_settings(store: QSettings | None = None) -> Settings:
    """Read, migrate and validate the settings (defaults where nothing is stored)."""
    store = store if store is not None else default_store()
    raw = {key: store.value(key) for key in (*_FIELDS, *LEGACY_KEYS)}
    raw = {key: value for key, value in raw.items() if value is not None}
    return Settings.from_dict(migrate(raw, stored_version(raw)))


def save_settings(settings: Settings, store: QSettings | None = None) -> None:
    """Write every field (schema version 1), drop legacy keys, flush to disk.

    Keys this module does not own (e.g. window geometry saved by other code) are
    left alone.
    """
    store = store if store is not None else default_store()
    values = Settings.from_dict(settings.to_dict()).to_dict()  # never store junk
    for key in LEGACY_KEYS:
        store.remove(key)
    for key, value in values.items():
        if value is None:
            store.remove(key)  # threshold None: "the model's own"
        else:
            store.setValue(key, value)
    store.sync()
