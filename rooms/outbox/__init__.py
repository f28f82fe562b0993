"""The notification outbox: rows written in the transaction that causes them, sent later by the dispatcher."""
