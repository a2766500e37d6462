"""Twilio Programmable Messaging (SMS) channel."""

from gateways.channels.twilio_sms.channel import TwilioSmsChannel

__all__ = ["TwilioSmsChannel"]
