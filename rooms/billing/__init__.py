"""Per-site endpoint billing: pure rules (contract, charges, metering, credits, dunning, invoice), their
persistence (models, store) and the billing run (run). See docs/billing.md."""
