"""The API's limits, what it keeps and for how long, imports, the scheduler, and the web
pages."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings


class ServiceSettings(BaseSettings):
    """The [api], [usage], [accounts], [imports] and [scheduler] sections."""

    api_max_body_bytes: int = Field(
        1_048_576, ge=1024, description="Largest request body accepted; larger answers 413."
    )
    api_page_size: int = Field(50, ge=1, le=500, description="Default page size of list endpoints.")
    api_max_page_size: int = Field(
        200, ge=1, le=5000, description="Largest page size a caller may ask for."
    )
    api_idempotency_hours: float = Field(
        24.0, gt=0, description="How long an Idempotency-Key is remembered."
    )

    usage_retention_days: float = Field(
        90.0, gt=0, description="Usage records (one per API request) are deleted after this."
    )
    usage_ip_retention_days: float = Field(
        30.0,
        gt=0,
        description="Addresses in the sign-in activity of API keys are cleared after this.",
    )

    accounts_deletion_grace_days: float = Field(
        30.0,
        ge=0,
        description="Days between asking for an account's deletion and the deletion (0 = at once).",
    )

    imports_max_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        description="Largest file POST /v1/imports accepts (streamed, never written to disk).",
    )

    scheduler_tick_seconds: float = Field(
        5.0, gt=0, description="How often the daemon looks for due work."
    )
    scheduler_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a claim on a unit of work lasts before another may take it.",
    )
    scheduler_claim_batch: int = Field(50, ge=1, description="Most units of work claimed per tick.")
    scheduler_max_attempts: int = Field(
        8, ge=1, description="Attempts of a background job before it is recorded as failed."
    )


class WebSettings(BaseSettings):
    """The [web] section (client pages and connection pages)."""

    web_client_link_days: float = Field(
        30.0,
        gt=0,
        le=365,
        description="How long the link to a client's own page (in every email and SMS) works.",
    )
    web_return_url: str = Field(
        "",
        description="Where the connection pages send a practitioner back to (the booking "
        "product), unless the account set its own; empty: no way-back button.",
    )
