"""The REST API for the booking product: thin handlers over gateway/domain."""
