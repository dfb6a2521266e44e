"""Free text every store can keep: the types of every name, URL and other str a person or a peer writes.

PostgreSQL refuses NUL in text (`invalid byte sequence for encoding "UTF8": 0x00`) and no driver
encodes a lone surrogate (JSON may escape one; UTF-8 has none), so one such character in an event
would make every batch holding it fail. The gateway refuses them at the edge
(422) and the event models refuse them on decode (the message is dead-lettered), with the same type:

- `SafeText`: one line of text a person typed (a company name, a URL, a cron expression, who did
  something): no C0 control character (U+0000-U+001F, tab and line breaks included), no DEL (U+007F),
  no lone surrogate (U+D800-U+DFFF).
- `CleanText`: text a service wrote for people (an error message or detail, which may quote an
  upstream's answer and span lines): tab, line feed and carriage return are kept, the other such
  characters replaced by U+FFFD rather than refused, so an outcome is never lost to a stray byte.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

_REFUSED = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_SCRUBBED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def refuse_control_characters(value: str) -> str:
    """Return `value`, or raise ValueError naming the first control character or lone surrogate."""
    found = _REFUSED.search(value)
    if found is None:
        return value
    code = ord(found.group())
    what = "a lone surrogate" if 0xD800 <= code <= 0xDFFF else "a control character"
    raise ValueError(f"{what} (U+{code:04X}) at position {found.start()} is not allowed in text")


def scrub_control_characters(value: str) -> str:
    """`value` with each control character (but tab, LF, CR) and lone surrogate replaced by U+FFFD."""
    return _SCRUBBED.sub(REPLACEMENT, value) if _SCRUBBED.search(value) else value


def has_control_characters(value: str) -> bool:
    """True when `refuse_control_characters` would refuse `value`."""
    return _REFUSED.search(value) is not None


SAFE_TEXT_PATTERN = "^[^\\x00-\\x1f\\x7f]*$"
"""SafeText's rule as a JSON Schema pattern (lone surrogates aside, which JSON text cannot carry raw)."""


class _SafeTextSchema:
    """Adds `SAFE_TEXT_PATTERN` to the JSON schema of a `SafeText`, beside its length limits."""

    @staticmethod
    def __get_pydantic_json_schema__(
        core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema.setdefault("pattern", SAFE_TEXT_PATTERN)
        return schema


SafeText = Annotated[str, AfterValidator(refuse_control_characters), _SafeTextSchema()]
"""One line a person typed; refused (ValueError, so 422 at the gateway) if it holds a control
character, DEL or a lone surrogate."""

CleanText = Annotated[str, AfterValidator(scrub_control_characters)]
"""Text a service wrote for people; such characters are replaced by U+FFFD, never refused."""
