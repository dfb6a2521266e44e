"""The status projector's pure decisions: the state it keeps (`state`), the fold (`fold`) and an
in-memory projection built from the same fold (`memory`). No I/O, no clock, no framework imports.
"""
