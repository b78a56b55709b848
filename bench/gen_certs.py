"""A bench CA and an ECDSA P-256 leaf for localhost/127.0.0.1 (trustme), written to DIR."""

from __future__ import annotations

import sys
from pathlib import Path

import trustme


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(key_type=trustme.KeyType.ECDSA)  # P-256
    leaf = ca.issue_cert("localhost", "127.0.0.1", key_type=trustme.KeyType.ECDSA)
    ca.cert_pem.write_to_path(str(out / "ca.pem"))
    leaf.private_key_pem.write_to_path(str(out / "server.key"))
    # the leaf only: the server sends one certificate, the CA file completes the chain
    leaf.cert_chain_pems[0].write_to_path(str(out / "server.pem"))


if __name__ == "__main__":
    main()
