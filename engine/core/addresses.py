"""Whether a phone number or e-mail address can be sent to at all.

The bank's data is typed by people: a phone column can hold ``'; DROP TABLE customers; --``,
an e-mail column a name or a line break (which an SMTP header would obey). Such a value is
treated as no address (``no_phone`` / ``no_email``), counted per field, and never handed to a
gateway. The rules are deliberately loose about formatting and strict about content.
"""

from __future__ import annotations

import re
from typing import Any

_PHONE_NOISE = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"\+?[0-9]{7,15}")  # E.164: at most 15 digits; 7 for short local numbers
_EMAIL = re.compile(r"[A-Za-z0-9!#$%&*+/=?^_`{|}~.'-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")


def valid_phone(value: Any) -> bool:
    """Digits (7 to 15, an optional leading +), spaces, hyphens, dots and brackets aside."""
    return isinstance(value, str | int) and bool(_PHONE.fullmatch(_PHONE_NOISE.sub("", str(value))))


def valid_email(value: Any) -> bool:
    """``local@domain.tld`` with no spaces, quotes, brackets or line breaks, at most 254."""
    return isinstance(value, str) and len(value) <= 254 and bool(_EMAIL.fullmatch(value))
