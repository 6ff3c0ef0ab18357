"""The SQL path: what a user-written query may show (rules 3 and 6 of issue 8)."""
