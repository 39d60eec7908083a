"""Imports: clients from a CSV, appointments from an .ics; the upload is parsed as it arrives
and never written to disk nor logged."""
