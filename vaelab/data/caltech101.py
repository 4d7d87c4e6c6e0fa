"""Caltech101 preprocessing: official archive or folder -> square uint8 images in a compressed ``.npz`` cache.

Accepted sources, searched in ``--data-dir`` (or ``$VAELAB_DATA_DIR``) then the Keras cache:

- the extracted ``101_ObjectCategories/`` folder,
- the inner archive ``101_ObjectCategories.tar.gz``,
- the official ``caltech-101.zip`` (which holds ``caltech-101/101_ObjectCategories.tar.gz``).

Archives are read as streams; nothing is extracted to disk. Every image is decoded with Pillow, converted
to RGB (about 30 Caltech101 images are greyscale) and resized with Lanczos (antialiased) resampling to a
square: ``crop`` cuts the central square first, keeping the aspect ratio; ``squash`` resizes the whole
image. Files Pillow cannot decode (corrupt or not images) are skipped and counted, never fatal.
``BACKGROUND_Google`` (clutter, not a category) is left out unless asked for.

The cache, ``caltech101_<size>_<fit>.npz``, holds ``images`` (N, size, size, 3) uint8, ``labels`` int16,
``class_names`` (sorted folder names) and what made it. The train/test split is made at load time:
a stratified split with a fixed seed, 10 % of every class (at least one image) for the test set, so
all models are compared on the same test images whatever their ``--seed``.
"""

from __future__ import annotations

import io
import os
import sys
import tarfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

import numpy as np

from vaelab.core.errors import UserError
from vaelab.data.sources import CALTECH101_ZIP, Dataset, check_images, fetch_hint, search_dirs

FOLDER = "101_ObjectCategories"
INNER_TAR = "101_ObjectCategories.tar.gz"
BACKGROUND = "BACKGROUND_Google"
FITS = ("crop", "squash")
SIZES = (92, 128)
TEST_FRACTION = 0.1
SPLIT_SEED = 0


@dataclass
class Preprocessed:
    """The result of :func:`preprocess`: what went into the cache."""

    path: Path
    n_images: int
    n_skipped: int
    class_names: tuple[str, ...]


def cache_name(size: int, fit: str) -> str:
    return f"caltech101_{size}_{fit}.npz"


def find_source(dirs: list[Path]) -> Path | None:
    """The first folder, inner tar.gz or official zip found in ``dirs`` (in that order of preference)."""
    for d in dirs:
        for candidate in (d / FOLDER, d / "caltech-101" / FOLDER, d / INNER_TAR, d / "caltech-101" / INNER_TAR,
                          d / CALTECH101_ZIP):
            if candidate.exists():
                return candidate
    return None


# --- reading the sources --------------------------------------------------------------------------


def _split_member(name: str) -> tuple[str, str] | None:
    """``…/101_ObjectCategories/<class>/<file>`` -> (class, file); None for anything else."""
    parts = PurePosixPath(name).parts
    if FOLDER not in parts:
        return None
    rest = parts[parts.index(FOLDER) + 1:]
    return (rest[0], rest[1]) if len(rest) == 2 and not rest[1].startswith("._") else None


def _iter_folder(folder: Path) -> Iterator[tuple[str, str, bytes]]:
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for f in sorted(p for p in class_dir.iterdir() if p.is_file()):
            yield class_dir.name, f.name, f.read_bytes()


def _iter_tar(fileobj, source: str) -> Iterator[tuple[str, str, bytes]]:
    try:
        with tarfile.open(fileobj=fileobj, mode="r|gz") as tar:
            for m in tar:
                where = _split_member(m.name) if m.isfile() else None
                if where is not None:
                    yield where[0], where[1], tar.extractfile(m).read()
    except (OSError, EOFError, tarfile.TarError, zipfile.BadZipFile) as e:
        raise UserError(f"{source}: truncated or corrupt archive ({e}); delete it and fetch it again") from None


def _iter_zip(path: Path) -> Iterator[tuple[str, str, bytes]]:
    try:
        with zipfile.ZipFile(path) as zf:
            inner = [n for n in zf.namelist() if PurePosixPath(n).name == INNER_TAR]
            if inner:
                with zf.open(inner[0]) as fh:
                    yield from _iter_tar(fh, f"{path}:{inner[0]}")
                return
            for n in sorted(zf.namelist()):  # a zip of the extracted folder works too
                where = _split_member(n)
                if where is not None and not n.endswith("/"):
                    yield where[0], where[1], zf.read(n)
    except (OSError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: truncated or corrupt zip ({e}); delete it and fetch it again") from None


def iter_source(source: Path) -> Iterator[tuple[str, str, bytes]]:
    """(class name, file name, file bytes) of every file in a folder, tar.gz or zip source."""
    if source.is_dir():
        return _iter_folder(source)
    if source.suffix == ".zip":
        return _iter_zip(source)
    if source.name.endswith((".tar.gz", ".tgz")):
        def gen():
            with open(source, "rb") as fh:
                yield from _iter_tar(fh, str(source))
        return gen()
    raise UserError(f"{source}: not a Caltech101 source (expected {FOLDER}/, {INNER_TAR} or {CALTECH101_ZIP})")


def count_files(source: Path, include_background: bool = False) -> int:
    """How many files a source holds (for the progress bar; archives are read through once)."""
    if source.is_dir():
        return sum(1 for c in source.iterdir() if c.is_dir() and (include_background or c.name != BACKGROUND)
                   for f in c.iterdir() if f.is_file())
    return sum(1 for cls, _, _ in iter_source(source) if include_background or cls != BACKGROUND)


# --- images ---------------------------------------------------------------------------------------


def to_square(data: bytes, size: int, fit: str = "crop") -> np.ndarray | None:
    """Decode image bytes to RGB and resize (Lanczos) to (size, size, 3) uint8; None when undecodable."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.draft("RGB", (size, size))  # JPEG: decode at a reduced scale >= size, much faster
            rgb = img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None  # PIL.UnidentifiedImageError and truncated files are OSErrors
    if fit == "crop":
        out = ImageOps.fit(rgb, (size, size), method=Image.LANCZOS)
    elif fit == "squash":
        out = rgb.resize((size, size), Image.LANCZOS)
    else:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    return np.asarray(out, dtype=np.uint8)


class Progress:
    """A one-line text progress bar on stderr (no dependency); quiet when ``enabled`` is False."""

    def __init__(self, total: int, label: str, enabled: bool = True, width: int = 30):
        self.total, self.label, self.enabled, self.width = max(total, 1), label, enabled, width
        self.started = time.perf_counter()
        self._last = -1.0

    def update(self, done: int, note: str = "") -> None:
        now = time.perf_counter()
        if not self.enabled or (now - self._last < 0.2 and done < self.total):
            return
        self._last = now
        filled = int(self.width * min(done, self.total) / self.total)
        print(f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{self.total} "
              f"{now - self.started:.0f}s {note}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print(file=sys.stderr, flush=True)


def preprocess(source: Path, size: int, fit: str = "crop", out_dir: Path | None = None,
               include_background: bool = False, progress: bool = True) -> Preprocessed:
    """Read every image of ``source``, make it ``size`` x ``size`` RGB, and write the ``.npz`` cache.

    Returns what was written; the number of skipped (undecodable) files is printed and stored.
    """
    from vaelab.core import artifacts

    if fit not in FITS:
        raise UserError(f"--fit must be one of {', '.join(FITS)}, got {fit!r}")
    if size < 8 or size > 1024:
        raise UserError(f"--size must be between 8 and 1024, got {size}")
    source = Path(source)
    out_dir = Path(out_dir) if out_dir is not None else source.parent
    total = count_files(source, include_background)
    images = np.empty((total, size, size, 3), dtype=np.uint8)
    labels, classes, skipped = [], {}, []
    bar = Progress(total, f"caltech101 {size}px {fit}", enabled=progress)
    seen = 0
    for cls, name, data in iter_source(source):
        if cls == BACKGROUND and not include_background:
            continue
        classes.setdefault(cls, None)
        seen += 1
        img = to_square(data, size, fit) if seen <= total else None
        if img is None:
            skipped.append(f"{cls}/{name}")
        else:
            images[len(labels)] = img
            labels.append(cls)
        bar.update(seen, f"({len(skipped)} skipped)")
    bar.close()
    class_names = tuple(sorted(classes))
    if not labels:
        raise UserError(f"{source}: no decodable images found")
    index = {c: i for i, c in enumerate(class_names)}
    images = images[:len(labels)]
    path = out_dir / cache_name(size, fit)
    with artifacts.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=images, labels=np.asarray([index[c] for c in labels], dtype=np.int16),
                                class_names=np.asarray(class_names), size=np.int32(size), fit=np.asarray(fit),
                                source=np.asarray(str(source)), skipped=np.asarray(skipped, dtype=str),
                                include_background=np.bool_(include_background))
    print(f"caltech101: {len(labels)} images of {len(class_names)} classes at {size}x{size} ({fit}); "
          f"{len(skipped)} file{'s' if len(skipped) != 1 else ''} skipped (not decodable"
          f"{': ' + ', '.join(skipped[:5]) + (' …' if len(skipped) > 5 else '') if skipped else ''}); "
          f"wrote {path}")
    return Preprocessed(path, len(labels), len(skipped), class_names)


# --- loading --------------------------------------------------------------------------------------


def read_cache(path: Path, size: int) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(images uint8, labels int64, class names) from a cache, checked."""
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("images", "labels", "class_names") if k not in f.files]
            if missing:
                raise UserError(f"{path}: missing arrays {', '.join(missing)}; delete it to rebuild the cache")
            images, labels, names = f["images"], f["labels"].astype(np.int64), tuple(map(str, f["class_names"]))
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise UserError(f"{path}: truncated or corrupt cache ({e}); delete it to rebuild it") from None
    images, labels = check_images("cached", images, labels, (size, size, 3), len(names), str(path))
    return images, labels, names


def stratified_split(labels: np.ndarray, test_fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices: ``round(test_fraction * n)`` (at least 1 when n >= 2) of every class in the
    test set; both index arrays shuffled so that ``--limit`` takes a mix of classes."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = max(1, int(round(test_fraction * len(idx)))) if len(idx) >= 2 else 0
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def load(data_dir=None, size: int = 92, fit: str = "crop", limit: int | None = None, cache_dir=None,
         progress: bool = True):
    """Caltech101 at ``size`` px as a uint8 :class:`vaelab.data.datasets.Dataset`, building the cache if missing.

    The cache is looked for in ``cache_dir`` (default: each search directory); when none exists it is
    built from the first source found and written to ``cache_dir`` or beside the source.
    """
    dirs = search_dirs(data_dir)
    name = cache_name(size, fit)
    candidates = [Path(cache_dir) / name] if cache_dir else [d / name for d in dirs]
    cache = next((c for c in candidates if c.is_file()), None)
    if cache is None:
        source = find_source(dirs)
        if source is None:
            raise UserError(f"Caltech101 not found: put {CALTECH101_ZIP}, {INNER_TAR} or the extracted {FOLDER}/ "
                            f"in {dirs[0]} or pass --data-dir DIR holding one ({_fetch_hint()})")
        out_dir = Path(cache_dir) if cache_dir else _writable_dir(source.parent, dirs)
        print(f"caltech101: no {name} yet; building it from {source}")
        cache = preprocess(source, size, fit, out_dir, progress=progress).path
    images, labels, names = read_cache(cache, size)
    train, test = stratified_split(labels)
    if limit is not None:
        train, test = train[:limit], test[:limit]
    data = Dataset(f"caltech101_{size}", images[train], labels[train], images[test], labels[test], names,
                   str(cache))
    return data


def _fetch_hint() -> str:
    return fetch_hint("caltech101")


def _writable_dir(preferred: Path, dirs: list[Path]) -> Path:
    for d in [preferred, *dirs]:
        if os.access(d, os.W_OK):
            return d
    raise UserError(f"cannot write the Caltech101 cache in {preferred}; pass --data-dir to a writable directory")


def preprocess_command(argv) -> int:
    """``dataset/caltech101_preprocess.py``: parse the options and build one cache."""
    import argparse

    class Parser(argparse.ArgumentParser):  # errors as one line, like the other scripts' (vaelab.cli.options)
        def error(self, message):
            self.exit(2, f"error: {message}; see {self.prog} --help\n")

    def side(text: str) -> int:
        if not text.strip().isdigit() or not 8 <= int(text) <= 1024:
            raise argparse.ArgumentTypeError(f"must be a whole number of pixels from 8 to 1024, got {text!r}")
        return int(text)

    side.minimum, side.maximum = 8, 1024
    p = Parser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=side, default=92, help="side of the square images in px (default: 92; "
                                                        f"the models use {' or '.join(map(str, SIZES))})")
    p.add_argument("--fit", choices=FITS, default="crop",
                   help="crop: central square, keeps the aspect ratio (default); squash: whole image")
    p.add_argument("--data-dir", help="where to look for the source (default: $VAELAB_DATA_DIR, then "
                                      "~/.keras/datasets)")
    p.add_argument("--source", type=Path, help=f"the source itself: {CALTECH101_ZIP}, {INNER_TAR} or {FOLDER}/")
    p.add_argument("--cache-dir", type=Path, help="where to write the .npz (default: beside the source)")
    p.add_argument("--include-background", action="store_true", help=f"keep {BACKGROUND} as a class")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    args = p.parse_args(argv)
    dirs = search_dirs(args.data_dir)
    source = args.source or find_source(dirs)
    if source is None or not Path(source).exists():
        raise UserError(f"Caltech101 not found{': ' + str(source) if source else ''}; put {CALTECH101_ZIP}, "
                        f"{INNER_TAR} or {FOLDER}/ in {dirs[0]} or pass --source ({_fetch_hint()})")
    out_dir = args.cache_dir or _writable_dir(Path(source).parent, dirs)
    preprocess(Path(source), args.size, args.fit, out_dir, include_background=args.include_background,
               progress=not args.no_progress)
    return 0
