"""Notifications: confirmations, reschedule and cancellation notices, and reminders.

planner.py decides what to send when (inside the appointment's transaction), delivery.py sends
what is due (claimed with leases), rendering.py writes the words in the recipient's zone and
language, channels/ speak SMTP and Twilio.
"""
