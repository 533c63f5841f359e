"""Delivery channels: the SMS gateway (HTTP), e-mail (SMTP) and webhooks, configured by IT.

:func:`open_channels` builds one adapter per configured channel from
:class:`~engine.channels.config.ChannelConfig`; the dispatcher looks them up by the outbox
row's channel name.
"""

from __future__ import annotations

from engine.channels.base import Channel, Message, RateLimiter, Result
from engine.channels.config import ChannelConfig, load_channels, webhook_names
from engine.channels.sms_http import SmsGateway
from engine.channels.smtp import SmtpSender
from engine.channels.webhook import Webhooks


def open_channels(config: ChannelConfig) -> dict[str, Channel]:
    """An adapter for each configured channel; a channel left out of the config has none, and
    its messages wait (they are not failed: IT may be adding it)."""
    channels: dict[str, Channel] = {}
    if config.sms is not None:
        channels["sms"] = SmsGateway(config.sms)
    if config.email is not None:
        channels["email"] = SmtpSender(config.email)
    if config.webhooks:
        channels["webhook"] = Webhooks(config.webhooks)
    return channels


__all__ = [
    "Channel",
    "ChannelConfig",
    "Message",
    "RateLimiter",
    "Result",
    "load_channels",
    "open_channels",
    "webhook_names",
]
