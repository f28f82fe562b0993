"""Benchmarks: Yunhui's SFU side by side with Janus, and the meeting server's joins (``python -m bench``)."""
