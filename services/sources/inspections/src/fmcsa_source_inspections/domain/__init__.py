"""Pure SaferWebAPI logic: classify an answer (fmcsa README 5.5), normalize a carrier snapshot,
summarize and hash it, and plan what a store write changes. No I/O, no clock, no HTTP or database imports.

- `records`: the normalized snapshot and the fetch that read it;
- `parse`: an answer to a fetch or one `Failure`;
- `content`: the snapshot as stored and hashed, and back;
- `summary`: the status page's view of a fetch;
- `changes`: the change facts between two snapshots and the `plan` of one fetch's writes.

Numbers are exact: bodies are parsed with `fmcsa_events.decimals.loads` (a JSON number with a fraction is
a `Decimal`, never a float), percents are `Decimal` with all their decimals, stored and hashed as canonical
decimal text, and the out-of-service move is computed exactly (`decimals.difference`).
"""
