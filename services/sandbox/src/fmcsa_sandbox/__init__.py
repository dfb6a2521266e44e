"""fmcsa_sandbox: stand-in FMCSA hosts (QCMobile, Socrata `8mt8-2mdr`, SaferWebAPI) with deterministic data
and switchable faults, for `up`, the tests and the benchmarks. Not for production.
"""
