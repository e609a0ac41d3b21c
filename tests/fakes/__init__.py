"""Real local stand-ins for services outside the system: an SMTP server (aiosmtpd) and a
Twilio-style text-message provider, both on loopback."""
