"""When each receipt email reached the SMTP sink.

The sink (`devtools.smtp_sink`) names each message file after the moment it accepted the
message (`<time_ns>-<random>.eml`), so the acceptance time needs no clock of ours; the
receipt number in the subject ties the email to its submission.
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path

import asyncpg

RECEIPT_NUMBER = re.compile(r"K\d+-\d{5,}")
HEAD_BYTES = 16 * 1024  # the headers are at the start; the bodies need not be read


class SinkReceipts:
    """Receipt number -> when the sink accepted its email (epoch seconds; the first copy
    when there are several). `refresh` reads only the files that arrived since."""

    def __init__(self, mail_dir: Path) -> None:
        self._mail_dir = mail_dir
        self._read: set[str] = set()
        # compat32 keeps header values raw (the default policy parses each deeply, which
        # takes seconds for thousands of files); the subject is decoded by hand.
        self._parser = BytesHeaderParser(policy=compat32)
        self.accepted: dict[str, float] = {}

    def refresh(self) -> dict[str, float]:
        for path in self._mail_dir.glob("*.eml"):
            if path.name in self._read:
                continue
            self._read.add(path.name)
            with path.open("rb") as message:
                head = message.read(HEAD_BYTES)
            raw = self._parser.parsebytes(head.split(b"\r\n\r\n", 1)[0]).get("Subject", "")
            found = RECEIPT_NUMBER.search(str(make_header(decode_header(str(raw)))))
            if found:
                at = int(path.name.split("-", 1)[0]) / 1e9
                number = found.group(0)
                self.accepted[number] = min(at, self.accepted.get(number, at))
        return self.accepted


async def delivery_stages(database_url: str) -> dict[str, tuple[float, float]]:
    """Receipt number -> (queued, marked sent), epoch seconds, from notifications'
    deliveries: where between the submission and the sink a receipt spent its time."""
    database = await asyncpg.connect(database_url)
    try:
        rows = await database.fetch(
            "SELECT subject, extract(epoch FROM created_at) AS queued,"
            " extract(epoch FROM sent_at) AS sent FROM deliveries"
            " WHERE purpose = 'receipt' AND sent_at IS NOT NULL"
        )
    finally:
        await database.close()
    stages: dict[str, tuple[float, float]] = {}
    for row in rows:
        found = RECEIPT_NUMBER.search(row["subject"])
        if found:
            stages[found.group(0)] = (float(row["queued"]), float(row["sent"]))
    return stages
