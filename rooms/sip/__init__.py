"""SIP gateway data: the room terminals' calls (call records) and what the gateway needs of Endpoints."""
