"""Live channels: HLS and RTMP out of meetings, encoders and playlists (issue #18, docs/live.md)."""
