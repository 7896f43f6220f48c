"""Guideline profiles: BP targets, drug-choice steps and safety rules, each with its citation."""
