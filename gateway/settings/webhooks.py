"""Outgoing webhooks: the delivery tick, timeouts, retries, retention."""

from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings


class WebhookSettings(BaseSettings):
    """The [webhooks] section."""

    webhooks_enabled: bool = Field(
        True, description="Run the delivery tick that sends events to webhook endpoints."
    )
    webhooks_tick_seconds: float = Field(
        0.25,
        gt=0,
        description="How often the webhook tick looks for due deliveries when it is idle (a "
        "finished delivery looks again at once).",
    )
    webhooks_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=60,
        description="Timeout of each delivery (connect and answer); a slower endpoint is "
        "retried later.",
    )
    webhooks_endpoint_concurrency: int = Field(
        8,
        ge=1,
        le=100,
        description="Most deliveries in flight at once to one endpoint, so a slow receiver "
        "cannot hold up the others.",
    )
    webhooks_claim_batch: int = Field(
        200, ge=1, description="Most deliveries claimed by one round of the tick."
    )
    webhooks_lease_seconds: float = Field(
        60.0,
        gt=0,
        description="How long a claimed delivery is reserved before another process may send "
        "it (a crash mid-send can repeat the deliveries in flight; receivers de-duplicate by "
        "webhook-id). Must exceed webhooks.timeout_seconds.",
    )
    webhooks_retry_hours: float = Field(
        72.0,
        gt=0,
        description="How long a delivery is retried (timeouts, connection errors, 429, 5xx), "
        "with growing waits and jitter, before it is given up.",
    )
    webhooks_retry_base_seconds: float = Field(
        5.0,
        gt=0,
        description="Wait after the first failed attempt; each later wait is four times the "
        "one before (at most six hours), with jitter.",
    )
    webhooks_disable_after_days: float = Field(
        5.0,
        gt=0,
        description="An endpoint whose every attempt has failed for this long is disabled, "
        "with the reason in words.",
    )
    webhooks_retention_days: float = Field(
        30.0,
        gt=0,
        description="Events, deliveries and their attempts are deleted this long after the "
        "event once no delivery of it is pending; replay reaches back this far.",
    )
    webhooks_response_bytes: int = Field(
        1024, ge=0, le=65536, description="How much of each answer is kept with the attempt."
    )
    webhooks_allow_http: bool = Field(
        False,
        description="Accept http:// endpoint URLs (tests, local development); https otherwise.",
    )

    @field_validator("webhooks_lease_seconds")
    @classmethod
    def _check_webhook_lease(cls, value: float, info: ValidationInfo) -> float:
        timeout = info.data.get("webhooks_timeout_seconds")
        if timeout is not None and value <= timeout:
            raise ValueError("must be longer than webhooks.timeout_seconds")
        return value
