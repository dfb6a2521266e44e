"""The baseline of `gateway_rps_ratio_vs_bare`: one Litestar GET on the gateway's server setup.

Run as `python -m bench.bare_app PORT`. It is served exactly like the gateway (`fmcsa_runtime.service
.serve`: uvicorn, one process, no access log), answers a small JSON document the size of a status
answer's header, and does nothing else: no auth, no database, no middleware.
"""

from __future__ import annotations

import sys

from litestar import Litestar, get

from fmcsa_runtime.service import serve


@get("/api/companies/{dot:str}/status", sync_to_thread=False)
def status(dot: str) -> dict[str, object]:
    return {"dot_number": dot, "active": True, "success": True, "failing": False, "sources": {}}


@get("/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}


def main() -> None:
    serve(Litestar(route_handlers=[status, health]), host="127.0.0.1", port=int(sys.argv[1]), grace_s=2)


if __name__ == "__main__":
    main()
