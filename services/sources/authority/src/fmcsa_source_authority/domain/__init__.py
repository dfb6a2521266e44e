"""The authority source's domain: parsing both upstreams, the pure plan of a fetch, the summary."""

from fmcsa_source_authority.domain.changes import plan
from fmcsa_source_authority.domain.model import (
    AuthorityFetch,
    AuthorityStatus,
    AuthorityType,
    Docket,
    Filing,
    Held,
    OosOrder,
    Profile,
    Row,
)
from fmcsa_source_authority.domain.summary import summarize

__all__ = [
    "AuthorityFetch",
    "AuthorityStatus",
    "AuthorityType",
    "Docket",
    "Filing",
    "Held",
    "OosOrder",
    "Profile",
    "Row",
    "plan",
    "summarize",
]
