"""Task kinds of the cohort library (filled in below)."""

KINDS: tuple = ()
