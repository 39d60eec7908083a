"""Domain services: the rules of accounts, users, clients and appointments.

Services take an open session, never commit (the caller owns the transaction), and scope every
query by account so that another tenant's ids behave exactly like missing ones.
"""
