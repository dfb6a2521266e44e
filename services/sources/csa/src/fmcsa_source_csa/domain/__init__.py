"""The csa source's pure domain: no I/O, no clock, no bus, database or HTTP client (a contract says so).

- `model`: the normalized values (carrier facts, BASIC scores, a fetch) and their hashes;
- `parse`: QCMobile answers into those values, or the `Failure` an answer stands for;
- `changes`: the plan of one fetch over what the store holds, and its change facts;
- `summary`: the compact view the status page shows.
"""
