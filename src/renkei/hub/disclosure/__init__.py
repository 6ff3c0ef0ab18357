"""Disclosure control: what may leave the sandbox, and in what form (issue 8 rule 5)."""
