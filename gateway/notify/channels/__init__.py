"""Delivery channels: email over SMTP (aiosmtplib) and SMS over Twilio, behind one protocol."""
