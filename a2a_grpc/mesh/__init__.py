"""The mesh: many agents and their replicas finding each other.

A capability registry of agents' cards, kept fresh by heartbeats; a consistent-hash ring that
routes (skill, context) to a replica; and card drift, noticed when a card a caller relies on
changes.
"""

from __future__ import annotations

from a2a_grpc.mesh.drift import CardBook, Drift, card_etag
from a2a_grpc.mesh.registration import Registration
from a2a_grpc.mesh.registry import (
    CardTooLargeError,
    Entry,
    Registry,
    RegistryError,
    RegistrySettings,
    RegistryUnavailableError,
)
from a2a_grpc.mesh.ring import HashRing, route_key
from a2a_grpc.mesh.routing import (
    NoReplicaError,
    Replica,
    ReplicaSource,
    Router,
    StaticReplicas,
    client_breakers,
)

__all__ = [
    "CardBook",
    "CardTooLargeError",
    "Drift",
    "Entry",
    "HashRing",
    "NoReplicaError",
    "Registration",
    "Registry",
    "RegistryError",
    "RegistrySettings",
    "RegistryUnavailableError",
    "Replica",
    "ReplicaSource",
    "Router",
    "StaticReplicas",
    "card_etag",
    "client_breakers",
    "route_key",
]
