"""Live channels (直播间): the table, states, viewer sessions and statistics (issue #18, docs/live.md)."""
