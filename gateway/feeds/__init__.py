"""Private iCal feeds: secret URLs that calendar apps subscribe to.

tokens (the secret in the URL), render (RFC 5545 text from a snapshot), source (the snapshot
from the store), cache (rendered bodies per feed and version), http (the public endpoint),
guard (slowing down guessers), access (who fetched what), service (the feed resources) and
invalidate (the hooks that bump a feed's version inside the transaction of a change).
"""
