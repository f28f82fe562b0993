"""Recordings in the product: the Recording model, its states, retention, signed download links."""
