"""Google Calendar glue on the daemon's side: the consent flow (OAuth state, callback), push
channels (watch, renewal, webhook) and the settings of the connector.

The provider protocol itself (and every Google quirk) lives in connectors/google.py; the sync
engine (gateway/sync/) never names Google: this package plugs into its provider-neutral hooks.
"""
