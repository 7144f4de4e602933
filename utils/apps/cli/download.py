"""``fma-genre download``: an official FMA archive, resumable, SHA-1 checked, unpacked."""
from __future__ import annotations

import argparse
from pathlib import Path

from utils.data.download import ARCHIVES, BASE_URL, download, size_text


def add(sub: argparse._SubParsersAction) -> None:
    """Register ``fma-genre download``."""
    table = "\n".join(f"  {a.name:<13} {size_text(a.approx_bytes):>10}  {a.contents}"
                      for a in ARCHIVES.values())
    p = sub.add_parser(
        "download", help="download, verify and unpack an official FMA archive",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Download an official FMA archive (resumable: run again after an "
                    "interruption), check its published SHA-1 and unpack it.\n\n"
                    f"archives (from {BASE_URL}):\n{table}")
    p.add_argument("name", choices=list(ARCHIVES), metavar="NAME", help="archive to fetch (see above)")
    p.add_argument("--dest", type=Path, default=Path("data"),
                   help="folder for NAME.zip and the unpacked NAME/ (default: data)")
    p.add_argument("--no-extract", action="store_true", help="download and verify only")
    p.add_argument("--base-url", default=BASE_URL, help="mirror holding the same files")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    out = download(args.name, args.dest, extract=not args.no_extract, base_url=args.base_url)
    print(out)
    return 0
