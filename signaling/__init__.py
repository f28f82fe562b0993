"""Live meetings over Socket.IO: the protocol (docs/protocol.md), Conference and Participant."""

from signaling.files_app import files_app
from signaling.server import MeetingServer
from signaling.settings import SignalingSettings
from signaling.store import RoomsMeetingStore

__all__ = ["MeetingServer", "RoomsMeetingStore", "SignalingSettings", "files_app"]
