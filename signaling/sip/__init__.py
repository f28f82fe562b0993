"""The SIP gateway: hardware room terminals dial into meetings (issue #16, docs/sip.md)."""
