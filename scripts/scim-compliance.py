#!/usr/bin/env python3
"""Runs the third-party SCIM checker scim2-tester (PyPI) against a rostersync `/scim/v2`.

Usage: scim-compliance.py BASE_URL TOKEN
  BASE_URL  e.g. http://127.0.0.1:8080/scim/v2
  TOKEN     a token of scope scim (rostersync token create --scope scim --name CONNECTION)

Prints one line per check (status, title, reason) and a JSON summary on the last line;
exits 1 when any check ends in error, 0 otherwise. Needs `pip install scim2-tester httpx2`
(the server's tests install both in a virtual environment: scripts/scim-tester-venv).
"""

import json
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    base, token = sys.argv[1], sys.argv[2]
    http = Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    results = check_server(SyncSCIMClient(http))
    counts = {}
    failed = []
    for r in results:
        name = r.status.name
        counts[name] = counts.get(name, 0) + 1
        reason = (r.reason or "").replace("\n", " ")
        print(f"{name:8} {r.title}: {reason}")
        if r.status in (Status.ERROR, Status.CRITICAL):
            failed.append(r.title)
    print(json.dumps({"counts": counts, "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
