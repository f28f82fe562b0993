"""The recording package's exceptions (translated to HTTP or protocol errors by their callers)."""

from __future__ import annotations


class RecordingError(Exception):
    """A recording cannot be made or finalised (directory, file, codec); the message says what and why."""


class RenderError(RecordingError):
    """A composite could not be rendered; the message says why (ffmpeg's last lines), it can be retried."""
