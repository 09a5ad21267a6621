"""Experiments: compare the arms of an A/B or shadow test with a significance test, and say who won."""
