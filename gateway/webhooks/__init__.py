"""Signed outbound webhooks: tell the booking product what changed.

- `events`: the event types and `emit`, which writes an event and its deliveries in the
  caller's transaction (the outbox pattern).
- `hooks`: one function per place that causes events (appointment changes, integration status
  and purge, notification outcomes, SMS opt-outs), each called once from that place.
- `signing`: secrets and the Standard Webhooks headers (the `standardwebhooks` library).
- `endpoints`: the service behind /v1/webhook-endpoints (URLs, secrets, deliveries, replay).
- `dispatcher`: claims due deliveries with leases and sends them, retrying with backoff.
- `retention`: deletes old events, deliveries and attempts in the retention sweep.
"""
