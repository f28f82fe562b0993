"""The SMS platform's records beyond the outbox: batches, statistics and metering of SMS parts."""
