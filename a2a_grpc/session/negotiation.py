"""The session handshake's terms: the server's settings, and the Welcome a Hello gets (or the
typed error that names what the server cannot give)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from a2a_grpc import errors, types
from a2a_grpc.service import SUPPORTED_VERSIONS, version_supported
from a2a_grpc.session.frames import Hello, Skill, Welcome, Window

__all__ = [
    "MIN_FRAME_BYTES",
    "MIN_HEARTBEAT_SECONDS",
    "SessionSettings",
    "negotiate",
    "skill_met",
]

MIN_HEARTBEAT_SECONDS = 1.0
"""The shortest heartbeat interval a server agrees to: a peer asking for less gets this, so that a
hostile Hello cannot make the server beat thousands of times a second."""
MIN_FRAME_BYTES = 16 * 1024
"""The smallest frame limit negotiated: below it, ordinary responses would not fit."""
MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class SessionSettings:
    """How a server runs sessions. Defaults suit one machine."""

    handshake_timeout: float = 10.0
    """Seconds a new session has to send its Hello: its own setting, apart from call deadlines,
    and generous, since a peer's cold start may be slow."""
    heartbeat_interval: float = 15.0
    """The server's heartbeat interval; the session uses the shorter of both sides'."""
    missed_heartbeats: int = 3
    """Intervals without any frame after which a side declares its peer dead."""
    max_frame_bytes: int = 4 * MiB
    """The largest frame the server sends or takes; the session uses the smaller of both sides'."""
    call_frames: int = 256
    """Window: frames of one call in flight towards the client."""
    call_bytes: int = 4 * MiB
    """Window: bytes of one call's frames in flight towards the client. Each is memory the server
    holds besides the task's own retained events: 4 MiB (was 16) keeps a 256 MiB artifact's server
    growth under 64 MiB, at about 10 % of its MB/s."""
    session_frames: int = 4096
    """Window: frames of all calls in flight towards the client."""
    session_bytes: int = 64 * MiB
    """Window: bytes of all calls' frames in flight towards the client."""
    max_concurrent_calls: int = 4096
    """Calls one session may run at once; one more ends with RESOURCE_EXHAUSTED."""
    max_joined_bytes: int = 64 * MiB
    """The largest Call frame the server joins from chunks; a larger one ends its call with an error."""
    resume_grace: float = 30.0
    """Seconds a session whose connection dropped waits to be resumed once it has no running call
    (its running calls carry on meanwhile, paused by flow control when nobody reads them); 0: a
    dropped session ends at once, as it would without resume."""
    max_detached: float = 300.0
    """Seconds a dropped session waits at most, running calls or not; then it ends (its calls end,
    their tasks do not)."""
    close_seconds: float = 5.0
    """Seconds a session's end waits for its calls to stop, its queued frames to be written and
    its reader to finish (each), and the server's closing waits for its sessions to be gone; then
    what is left is cut."""
    home_refresh_seconds: float = 10.0
    """Replicas: how often a server renews its liveness and its sessions' entries in the session
    directory (``a2a_grpc.session.directory``); each lapses after three times this unless renewed,
    so the other replicas know within that when one died (a resume of its sessions is then refused
    with SessionExpiredError)."""
    directory_timeout: float = 2.0
    """Replicas: seconds one read or write of the session directory may take; a resume that cannot
    read it in time is refused with UnavailableError (the client tries again)."""

    def __post_init__(self) -> None:
        for name in (
            "handshake_timeout",
            "heartbeat_interval",
            "close_seconds",
            "home_refresh_seconds",
            "directory_timeout",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive seconds, not {getattr(self, name)!r}")
        for name in ("home_refresh_seconds", "directory_timeout"):
            if not getattr(self, name) <= 86400:
                raise ValueError(f"{name} must be at most 86400 seconds (a day), not {getattr(self, name)!r}")
        if not 0 <= self.resume_grace <= self.max_detached:
            raise ValueError(
                f"resume_grace must be from 0 to max_detached ({self.max_detached!r}) seconds, "
                f"not {self.resume_grace!r}"
            )
        if self.heartbeat_interval < MIN_HEARTBEAT_SECONDS:
            raise ValueError(f"heartbeat_interval must be at least {MIN_HEARTBEAT_SECONDS:g} s")
        if self.max_frame_bytes < MIN_FRAME_BYTES:
            raise ValueError(f"max_frame_bytes must be at least {MIN_FRAME_BYTES}")
        for name in (
            "missed_heartbeats",
            "call_frames",
            "call_bytes",
            "session_frames",
            "session_bytes",
            "max_concurrent_calls",
            "max_joined_bytes",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)!r}")

    @property
    def window(self) -> Window:
        return Window(
            call_frames=self.call_frames,
            call_bytes=self.call_bytes,
            session_frames=self.session_frames,
            session_bytes=self.session_bytes,
        )


def _version_tuple(version: str) -> tuple[int, int] | None:
    parts = version.split(".")
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() and len(p) <= 6 for p in parts):
        return None
    return int(parts[0]), int(parts[1]) if len(parts) > 1 else 0


def skill_met(required: Skill, offered_version: str | None) -> bool:
    """Whether a skill offered at ``offered_version`` (None: not offered) meets ``required``: any
    version when none is required, else the same major number and an equal or higher minor."""
    if offered_version is None:
        return False
    if not required.version:
        return True
    want, have = _version_tuple(required.version), _version_tuple(offered_version)
    if want is None or have is None:
        return required.version == offered_version
    return have[0] == want[0] and have[1] >= want[1]


def _shown(skill: Skill) -> str:
    return f"{skill.id}@{skill.version}" if skill.version else skill.id


def offered_skills(card: types.AgentCard) -> list[Skill]:
    """The card's skills as a session offers them. A2A skills have no version of their own: each
    is offered at the agent's ``version``."""
    return [Skill(id=skill.id, version=card.version) for skill in card.skills]


def negotiate(hello: Hello, settings: SessionSettings, card: types.AgentCard) -> Welcome:
    """The Welcome for ``hello``: the first A2A version both speak, the shorter heartbeat, the
    smaller frame limit and windows. VersionNotSupportedError when no version is shared;
    CapabilityMismatchError naming every required skill the card lacks (and, with them, the
    versions if those are missing too)."""
    asked = list(hello.protocol_versions)
    version = next((v for v in asked if version_supported(v)), None)
    offered = {skill.id: card.version for skill in card.skills}
    missing = [s for s in hello.required_skills if not skill_met(s, offered.get(s.id))]
    supported = ",".join(SUPPORTED_VERSIONS)
    if missing:
        names = ",".join(_shown(s) for s in missing)
        facts = {"missing_skills": names, "offered_skills": ",".join(sorted(offered))}
        text = f"agent {card.name!r} does not offer the required skill(s) {names}"
        if version is None:
            facts["unsupported_versions"] = ",".join(asked) or "(none named)"
            facts["supported_versions"] = supported
            text += f", nor A2A version(s) {', '.join(asked) or '(none named)'} (it speaks {supported})"
        raise errors.CapabilityMismatchError(text, metadata=facts)
    if version is None:
        shown = ", ".join(errors.echo(v, 16) for v in asked[:8]) if asked else "none"
        raise errors.VersionNotSupportedError(
            f"the Hello names A2A version(s) {shown}; this agent speaks {supported}",
            metadata={"supported_versions": supported, "unsupported_versions": ",".join(asked[:8])},
        )
    asked_beat = (
        hello.heartbeat_interval.ToTimedelta().total_seconds() if hello.HasField("heartbeat_interval") else 0
    )
    beat = min(settings.heartbeat_interval, asked_beat) if asked_beat > 0 else settings.heartbeat_interval
    beat = max(beat, MIN_HEARTBEAT_SECONDS)
    frame = min(settings.max_frame_bytes, hello.max_frame_bytes or settings.max_frame_bytes)
    ours, theirs = settings.window, hello.window
    welcome = Welcome(
        session_id=os.urandom(16).hex(),
        resume_token=os.urandom(24).hex(),
        protocol_version=version,
        missed_heartbeats=settings.missed_heartbeats,
        max_frame_bytes=max(frame, MIN_FRAME_BYTES),
        window=Window(
            call_frames=min(ours.call_frames, theirs.call_frames or ours.call_frames),
            call_bytes=min(ours.call_bytes, theirs.call_bytes or ours.call_bytes),
            session_frames=min(ours.session_frames, theirs.session_frames or ours.session_frames),
            session_bytes=min(ours.session_bytes, theirs.session_bytes or ours.session_bytes),
        ),
        max_concurrent_calls=settings.max_concurrent_calls,
        offered_skills=offered_skills(card),
        agent_name=card.name,
    )
    welcome.heartbeat_interval.FromNanoseconds(int(beat * 1e9))
    return welcome
