"""Pure rules of the violations source: parse Socrata answers and rows (`parse`), page a read
(`paging`), plan what a read does to the store and which changes it publishes (`changes`), and
summarize it (`summary`). No I/O, no clock, no framework (the "domain modules are pure" contract).
"""
