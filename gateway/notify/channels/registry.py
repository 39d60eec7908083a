"""The channels the dispatcher can send on, by name, each built from the settings.

Adding a channel is one module implementing `base.Channel` and one line here; the dispatcher
never names a channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from gateway.config import Settings
from gateway.notify.channels.base import Channel
from gateway.notify.channels.email import SmtpChannel
from gateway.notify.channels.sms import TwilioChannel

ChannelFactory = Callable[[Settings], Channel]

CHANNELS: Mapping[str, ChannelFactory] = MappingProxyType(
    {SmtpChannel.name: SmtpChannel, TwilioChannel.name: TwilioChannel}
)


def load(settings: Settings) -> dict[str, Channel]:
    """One instance of every channel, by name (configured or not: see `Channel.configured`)."""
    return {name: factory(settings) for name, factory in CHANNELS.items()}
