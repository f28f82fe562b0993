"""Incidents and the contract's clocks, measured outages, the quarterly availability report (#21)."""
