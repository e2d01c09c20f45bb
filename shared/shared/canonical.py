"""Canonical JSON and its SHA-256: the same value always gives the same bytes.

Sorted keys, no insignificant whitespace, UTF-8 without escaping: simple enough that a
resident can recompute a receipt digest with any JSON library (see the README).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()
