"""Twilio Programmable Voice: a call that reads the alert and takes a keypress as acknowledgement."""

from gateways.channels.twilio_voice.channel import TwilioVoiceChannel, twiml_for

__all__ = ["TwilioVoiceChannel", "twiml_for"]
