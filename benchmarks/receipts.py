"""When each receipt email reached the SMTP sink.

The sink (`devtools.smtp_sink`) names each message file after the moment it accepted the
message (`<time_ns>-<random>.eml`), so the acceptance time needs no clock of ours; the
receipt number in the subject ties the email to its submission.
"""

from __future__ import annotations

import re
from email.parser import BytesHeaderParser
from email.policy import default
from pathlib import Path

RECEIPT_NUMBER = re.compile(r"K\d+-\d{5,}")


def receipts_accepted(mail_dir: Path) -> dict[str, float]:
    """Receipt number -> when the sink accepted its email (epoch seconds); the first copy
    when there are several."""
    parser = BytesHeaderParser(policy=default)
    accepted: dict[str, float] = {}
    for path in sorted(mail_dir.glob("*.eml")):
        with path.open("rb") as message:
            subject = str(parser.parse(message).get("Subject", ""))
        found = RECEIPT_NUMBER.search(subject)
        if found:
            accepted.setdefault(found.group(0), int(path.name.split("-", 1)[0]) / 1e9)
    return accepted
