"""The channels the dispatcher can send on, by name, each built from the settings.

Adding a channel is one module implementing `base.Channel` and one line here; the dispatcher
never names a channel. A channel that cannot be built from the settings stops start-up
(`check`, called by the app factory and `calgate serve` in every role) with one line naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

from gateway.config import Settings
from gateway.errors import CalgateError, ConfigError
from gateway.notify.channels.base import Channel
from gateway.notify.channels.email import SmtpChannel
from gateway.notify.channels.senders import check_sender_settings
from gateway.notify.channels.sms import TwilioChannel

ChannelFactory = Callable[[Settings], Channel]

CHANNELS: Mapping[str, ChannelFactory] = MappingProxyType(
    {SmtpChannel.name: SmtpChannel, TwilioChannel.name: TwilioChannel}
)


def load(settings: Settings) -> dict[str, Channel]:
    """One instance of every channel, by name (configured or not: see `Channel.configured`).

    Raises ConfigError, one line naming the channel and why, when one cannot be built.
    """
    channels: dict[str, Channel] = {}
    for name, factory in CHANNELS.items():
        try:
            channels[name] = factory(settings)
        except Exception as exc:  # whatever a channel's library raises on bad settings
            why = exc.message if isinstance(exc, CalgateError) else f"{type(exc).__name__}: {exc}"
            why = " ".join(why.split())  # one line, whatever the library wrote
            raise ConfigError(f"notification channel {name} cannot load: {why}") from None
    return channels


def check(settings: Settings, config_file: Path | None = None) -> None:
    """The notify feature's start-up check: the SMS sender settings, and every channel loads.

    Raises ConfigError with one line naming the setting (and where it came from: the
    environment, else `config_file`, else the default file) or the channel.
    """
    check_sender_settings(settings, config_file)
    load(settings)  # built and dropped: a channel holds no connection until it sends
