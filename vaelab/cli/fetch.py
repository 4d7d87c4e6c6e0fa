"""``dataset/fetch.py``: download and verify the official file of every dataset the project uses."""

from __future__ import annotations

from pathlib import Path

from vaelab.core.errors import UserError
from vaelab.data.downloads import DownloadError, fetch, file_digest


def fetch_command(argv) -> int:
    """``dataset/fetch.py``: download and verify the official files of every dataset (or ``--only`` some) into
    ``~/.keras/datasets`` or ``--data-dir``; files already there with the right hash are kept as they are."""
    from vaelab.cli.options import OneLineErrorParser
    from vaelab.data.sources import DOWNLOADS, KERAS_CACHE

    p = OneLineErrorParser(prog="dataset/fetch.py", description="Download the official files of every dataset "
                           "the project uses and verify their published hashes; files already there and valid are "
                           "kept.")
    p.add_argument("--data-dir", type=Path, default=KERAS_CACHE,
                   help=f"where the files go, laid out as the loaders look for them (default: {KERAS_CACHE}); "
                        "pass the same directory to the scripts' --data-dir")
    p.add_argument("--only", metavar="NAMES", help=f"comma-separated datasets among {', '.join(DOWNLOADS)} "
                                                   "(default: all)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    args = p.parse_args(argv)
    names = [n.strip() for n in (args.only or ",".join(DOWNLOADS)).split(",") if n.strip()]
    unknown = [n for n in names if n not in DOWNLOADS]
    if unknown or not names:
        raise UserError(f"--only {args.only!r}: unknown dataset {', '.join(unknown) or '(none given)'}; "
                        f"choose among {', '.join(DOWNLOADS)}")
    folder = args.data_dir.expanduser()
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--data-dir {args.data_dir} is a file, not a directory")
    failed = []
    for remote in (r for name in names for r in DOWNLOADS[name]):
        target = remote.path(folder)
        if target.is_file():
            if file_digest(target, remote.hash_kind) == remote.file_hash:
                print(f"{remote.name}: ok, {remote.hash_kind} verified ({target})")
                continue
            print(f"{remote.name}: {target} is not the official file ({remote.hash_kind} differs); "
                  "downloading the official one (the present file is kept until it has arrived whole)")
        print(f"{remote.name}: downloading {remote.url} ...", flush=True)
        try:
            fetch(remote.url, target, remote.file_hash)
        except DownloadError as e:
            print(f"{remote.name}: failed: {e}; {remote.get_it(target, or_data_dir=False)}")
            failed.append(remote.name)
            continue
        print(f"{remote.name}: saved {target} ({target.stat().st_size / 1e6:.1f} MB, {remote.hash_kind} verified)")
    if failed:
        raise UserError(f"{len(failed)} file{'s' * (len(failed) > 1)} could not be downloaded ({', '.join(failed)}); "
                        "each line above says where it comes from and where it goes")
    return 0
