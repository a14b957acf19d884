"""The mesh: many agents and their replicas finding each other.

A capability registry of agents' cards, kept fresh by heartbeats; a consistent-hash ring that
routes (skill, context) to a replica; and card drift, noticed when a card a caller relies on
changes.
"""
