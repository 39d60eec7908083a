"""Notifications: confirmations, reschedule and cancellation notices, and reminders.

planner.py decides what to send when (inside the appointment's transaction, quiet hours from
quiet.py). What is due is sent by delivery.py's dispatcher (a leases.ClaimLoop): claims.py checks
each claimed row and reads a snapshot, compose.py turns the snapshot into an `Outgoing` message
(rendering.py writes the words in the recipient's zone and language), a channel from
channels/registry.py sends it (email over SMTP, SMS over Twilio, one `Channel` protocol), and
outcomes.py records what became of it.
"""
