"""CIFAR-100 on disk and on the compute device.

What it is: the reader of the official `cifar-100-python/` pickle files (real or synthetic, same code),
the 40k/10k split, raw-pixel statistics, and the batched on-device augmentation used by training.
What it is not: a torch Dataset/DataLoader pipeline (the whole split lives on the device as uint8).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import pickle
import struct
import tarfile
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..core import paths
from ..core.checkpoint import atomic_write, atomic_write_text, exclusive_lock, remove_stale_temporaries

URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
ARCHIVE = "cifar-100-python.tar.gz"
ARCHIVE_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
FOLDER = "cifar-100-python"
FILE_MD5 = {  # the official files' checksums (as torchvision lists them)
    "train": "16019d7e3df5f24257cddd939b257f8d",
    "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
    "meta": "7973b15100ade9c7d40fb424638fde48",
}
# Written into the synthetic files' batch_label, so part of their data identity (and of their runs' hashes): it
# names the module as it was when synthetic data was first written; never change it.
SYNTHETIC_TAG = "synthetic CIFAR-100 (lib.data.write_synthetic_cifar100)"
PAD = 4  # pixels of zero padding before the random 32x32 crop


class DataError(RuntimeError):
    """The data folder is missing, incomplete, corrupt or cannot be downloaded; the message says what to do."""


class Cifar100(NamedTuple):
    """The two files of CIFAR-100 in memory, as numpy arrays (what `load_cifar100` returns)."""

    train_images: np.ndarray  # uint8, N x 32 x 32 x 3 (HWC, RGB)
    train_labels: np.ndarray  # int64, N, fine labels 0..99
    test_images: np.ndarray
    test_labels: np.ndarray


@dataclass(frozen=True)
class DataInfo:
    """What data a folder holds, without its images: kind, fingerprint (part of every run's hash), sizes, names."""

    kind: str  # "cifar100" (the official files), "synthetic" (our generator) or "modified" (parses, not official)
    fingerprint: str  # md5 of the three files together; names the data in every run hash
    folder: str
    class_names: tuple[str, ...]
    n_train: int  # images in the `train` file (50,000 for the real data)
    n_test: int

    @property
    def is_official(self) -> bool:
        return self.kind == "cifar100"

    @property
    def label(self) -> str:
        """What figures and the paper print about the data."""
        labels = {"cifar100": "CIFAR-100", "synthetic": "synthetic data", "modified": "non-official CIFAR-100 files"}
        return labels[self.kind]


def _resolve(data_dir: str | Path | None) -> Path:
    return Path(data_dir).expanduser().resolve() if data_dir is not None else paths.data_dir()


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")  # the official files are Python-2 pickles
    except Exception as e:  # noqa: BLE001 - any parse failure means the same thing to the user
        raise DataError(f"{path} is not a readable CIFAR-100 pickle ({type(e).__name__}: {e}); "
                        f"delete {path.parent} and download again") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path} is not a CIFAR-100 file (holds a {type(batch).__name__}, not a dict); "
                        f"delete {path.parent} and download again")
    return batch


def _ensure_files(root: Path, download: bool) -> Path:
    """Return `root/cifar-100-python`, extracting or downloading the official archive if needed."""
    folder = root / FOLDER
    if all((folder / name).is_file() for name in FILE_MD5):
        return folder
    if folder.is_dir() and any(folder.iterdir()):
        missing = [n for n in FILE_MD5 if not (folder / n).is_file()]
        raise DataError(f"{folder} is incomplete (missing {', '.join(missing)}); delete it and download again")
    archive = root / ARCHIVE
    if not archive.is_file() and download:
        from torchvision.datasets.utils import download_url
        try:
            download_url(URL, str(root), ARCHIVE, md5=ARCHIVE_MD5)
        except Exception as e:  # noqa: BLE001 - no network, proxy, HTTP error: all need the same fix
            archive.unlink(missing_ok=True)
            raise DataError(f"CIFAR-100 is not in {root} and could not be downloaded ({type(e).__name__}); "
                            f"put {ARCHIVE} (from {URL}) or its extracted {FOLDER}/ folder there, or work "
                            f"offline on synthetic data with the smoke profile (make all PROFILE=smoke)") from None
    if not archive.is_file():
        raise DataError(f"CIFAR-100 is not in {root}: put {ARCHIVE} (from {URL}) or its extracted {FOLDER}/ "
                        f"folder there, or pass download=True")
    if _md5(archive) != ARCHIVE_MD5:
        raise DataError(f"{archive} has the wrong checksum (expected md5 {ARCHIVE_MD5}): it is truncated or not "
                        f"the official archive; delete it and download again")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, filter="data")
    return folder


@lru_cache(maxsize=8)
def _info_cached(folder: str, stamp: tuple) -> DataInfo:
    folder_path = Path(folder)
    sums = {name: _md5(folder_path / name) for name in FILE_MD5}
    meta = _unpickle(folder_path / "meta")
    train = _unpickle(folder_path / "train")
    test = _unpickle(folder_path / "test")
    if sums == FILE_MD5:
        kind = "cifar100"
    elif train.get("batch_label") == SYNTHETIC_TAG:
        kind = "synthetic"
    else:
        kind = "modified"
    fingerprint = hashlib.md5("".join(sums[n] for n in sorted(sums)).encode()).hexdigest()
    names = meta.get("fine_label_names")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise DataError(f"{folder_path / 'meta'} lacks the list of class names (fine_label_names) of a CIFAR-100 "
                        f"meta file; delete {folder_path} and download again")
    names = tuple(names)
    n_train, n_test = (len(batch.get("fine_labels", ())) for batch in (train, test))
    return DataInfo(kind, f"{kind}:{fingerprint}", folder, names, n_train, n_test)


def data_info(data_dir: str | Path | None = None, download: bool = True) -> DataInfo:
    """Identify the data in a folder (official, synthetic or modified) without loading it into memory twice."""
    folder = _ensure_files(_resolve(data_dir), download)
    stamp = tuple((n, (folder / n).stat().st_size, (folder / n).stat().st_mtime_ns) for n in sorted(FILE_MD5))
    return _info_cached(str(folder), stamp)


def _images_labels(batch: dict, path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    try:
        raw, labels = batch["data"], np.asarray(batch["fine_labels"])
    except KeyError as e:
        raise DataError(f"{path} lacks the key {e} of a CIFAR-100 file; delete it and download again") from None
    if not (isinstance(raw, np.ndarray) and raw.dtype == np.uint8):  # pixels 0..255; a cast would wrap others
        raise DataError(f"{path} holds pixels of type {getattr(raw, 'dtype', type(raw).__name__)}, not uint8 "
                        f"(0..255) as CIFAR-100 files do; delete it and download again")
    if labels.dtype.kind not in "iu":
        raise DataError(f"{path} holds labels of type {labels.dtype}, not integers; delete it and download again")
    data, labels = raw, labels.astype(np.int64)
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise DataError(f"{path} holds data of shape {data.shape} with {len(labels)} labels; "
                        f"expected N x 3072 with N labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{path} has labels outside 0..{n_classes - 1}")
    # Rows are three 1024-pixel planes (R, G, B) of a 32x32 image: N x 3072 -> N x 32 x 32 x 3.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy(), labels


NOT_OFFICIAL = "not the official CIFAR-100"  # how load_cifar100's warning about other data starts


@contextlib.contextmanager
def silence_unofficial_warning():
    """Within it, load_cifar100's warning that the data is not the official CIFAR-100 is not shown (for callers
    that have already said what data it is); other warnings show; the warning filters are restored on exit."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f".*{NOT_OFFICIAL}.*")
        yield


def load_cifar100(data_dir: str | Path | None = None, download: bool = True) -> Cifar100:
    """Read CIFAR-100 (train 50k, test 10k for the real files) as uint8 N x 32 x 32 x 3 images and int64 labels.

    Downloads the official archive (md5-checked) into `data_dir` if it holds neither the archive nor the
    extracted folder. Files that parse but are not the official ones load with a one-line warning.
    """
    info = data_info(data_dir, download)
    folder = Path(info.folder)
    if not info.is_official:
        warnings.warn(f"{NOT_OFFICIAL}: {folder} ({info.label}); its runs are kept apart from real ones",
                      stacklevel=2)
    n_classes = max(len(info.class_names), 1)
    train = _images_labels(_unpickle(folder / "train"), folder / "train", n_classes)
    test = _images_labels(_unpickle(folder / "test"), folder / "test", n_classes)
    return Cifar100(train[0], train[1], test[0], test[1])


def write_synthetic_cifar100(data_dir: str | Path, n_train: int = 50_000, n_test: int = 10_000, seed: int = 0,
                             num_classes: int = 100) -> Path:
    """Write a CIFAR-100-format folder (`data_dir/cifar-100-python/{train,test,meta}`) of learnable fake images.

    Each class has its own smooth colour pattern; an image is its class pattern shifted by a few pixels
    plus noise, so a small network learns it within an epoch or two. Laid out like the official Python-2
    pickles (byte-string keys and names, the images as a uint8 N x 3072 array); the train file's
    `batch_label` marks it as synthetic.

    Safe for several processes at once: the folder is written under a lock (`data_dir/.cifar-100-python.lock`),
    each file to a temporary name renamed into place, `meta` last, so a reader that finds `meta` finds the whole
    set. A folder already holding a set written with the same arguments (say, by the process that took the lock
    first) is left as it is, so every process gets the same data and fingerprint.
    """
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train}, {n_test}")
    root = Path(data_dir).expanduser()
    folder = root / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    arguments = {"n_train": n_train, "n_test": n_test, "seed": seed, "num_classes": num_classes}
    with exclusive_lock(root / f".{FOLDER}.lock"):
        if _written_with(folder, arguments):
            return folder
        (folder / "meta").unlink(missing_ok=True)  # a rewrite: readers see no data meanwhile, not a mix
        remove_stale_temporaries(folder, locked=True)  # what a writer killed mid-file left
        _write_synthetic_files(folder, arguments)
    return folder


SYNTHETIC_STAMP = "synthetic.json"  # in the data folder: the arguments its synthetic files were written with


def _written_with(folder: Path, arguments: dict) -> bool:
    """Whether `folder` holds a complete synthetic set written with `arguments`."""
    try:
        stamp = json.loads((folder / SYNTHETIC_STAMP).read_text())
    except (OSError, ValueError):
        return False
    return stamp == arguments and all((folder / name).is_file() for name in FILE_MD5)


def _write_synthetic_files(folder: Path, arguments: dict) -> None:
    """Generate and write train, test, the stamp and meta (last: its presence means the set is complete)."""
    n_train, n_test, num_classes = arguments["n_train"], arguments["n_test"], arguments["num_classes"]
    rng = np.random.default_rng(arguments["seed"])
    # Class patterns: 8x8 random colours upsampled to 32x32 (smooth, distinct), uint8 range.
    coarse = rng.uniform(30, 225, size=(num_classes, 8, 8, 3))
    patterns = coarse.repeat(4, axis=1).repeat(4, axis=2)  # classes x 32 x 32 x 3

    def make(n: int) -> tuple[np.ndarray, list[int]]:
        labels = rng.integers(0, num_classes, size=n)
        shifts = rng.integers(-3, 4, size=(n, 2))
        images = np.empty((n, 32, 32, 3), dtype=np.uint8)
        for i, (label, (dy, dx)) in enumerate(zip(labels, shifts, strict=True)):
            image = np.roll(patterns[label], (dy, dx), axis=(0, 1)) + rng.normal(0, 25, size=(32, 32, 3))
            images[i] = np.clip(image, 0, 255)
        rows = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # official layout: R, G, B planes per row
        return rows, labels.tolist()

    fine_names = [f"class_{i:02d}".encode() for i in range(num_classes)]
    for name, n in (("train", n_train), ("test", n_test)):
        rows, labels = make(n)
        batch = {b"filenames": [f"synthetic_{name}_{i}.png".encode() for i in range(n)],
                 b"batch_label": SYNTHETIC_TAG.encode(), b"fine_labels": labels,
                 b"coarse_labels": [label % 20 for label in labels], b"data": rows}
        _write_python2_pickle(folder / name, batch)
    atomic_write_text(folder / SYNTHETIC_STAMP, json.dumps(arguments))
    _write_python2_pickle(folder / "meta", {b"fine_label_names": fine_names,
                                            b"coarse_label_names": [f"super_{i:02d}".encode() for i in range(20)]})


class _Python2Pickler(pickle._Pickler):
    """Pickles bytes as Python 2's `str` (the SHORT_BINSTRING / BINSTRING opcodes), as the official files hold
    their keys and names: `pickle.load(f, encoding="bytes")` then gives bytes and `encoding="latin1"` str, for
    our files exactly as for the real ones. (Python 3's own pickler writes bytes as a call that gives bytes
    under either encoding.)"""

    def save_python2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = {**pickle._Pickler.dispatch, bytes: save_python2_str}


def _write_python2_pickle(path: Path, obj: dict) -> None:
    """Pickle `obj` as Python 2 would into `path`, atomically (a temporary file renamed into place)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            _Python2Pickler(f, protocol=2).dump(obj)

    atomic_write(path, write)


def check_split(n_total: int, val_size: int, train_subset: int | None, val_subset: int | None) -> None:
    """Fail with one line if the requested split does not fit a training file of `n_total` images."""
    from ..core.config import ConfigError

    if not 0 < val_size < n_total:
        raise ConfigError(f"val_size must be in 1..{n_total - 1} for {n_total} training images, got {val_size}")
    limits = (("train_subset", train_subset, n_total - val_size), ("val_subset", val_subset, val_size))
    for name, value, limit in limits:
        if value is not None and value > limit:
            raise ConfigError(f"{name} must be at most {limit} (the size of that split), got {value}")


def split_indices(n_total: int = 50_000, n_val: int = 10_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices, identical to
    `random_split(range(n_total), [n_total - n_val, n_val], generator=torch.Generator().manual_seed(seed))`."""
    if not 0 < n_val < n_total:
        raise ValueError(f"val_size must be in 1..{n_total - 1} for {n_total} training images, got {n_val}")
    permutation = torch.randperm(n_total, generator=torch.Generator().manual_seed(seed)).numpy()
    return permutation[: n_total - n_val].copy(), permutation[n_total - n_val:].copy()


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and (population) std of raw pixels scaled to [0, 1], over all pixels of all images.

    images: uint8 N x H x W x 3. Not the mean of per-image stds, and never on augmented (padded) crops.
    """
    total = np.zeros(3)
    total_sq = np.zeros(3)
    for start in range(0, len(images), 4096):  # chunks keep float64 copies small
        chunk = images[start:start + 4096].reshape(-1, 3).astype(np.float64) / 255.0
        total += chunk.sum(axis=0)
        total_sq += np.square(chunk).sum(axis=0)
    count = images.shape[0] * images.shape[1] * images.shape[2]
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    return mean, std


def class_proportions(labels: np.ndarray, num_classes: int = 100) -> np.ndarray:
    """Fraction of images in each class (sums to 1)."""
    return np.bincount(labels, minlength=num_classes) / len(labels)


class DeviceSplit:
    """One split held on the compute device: uint8 images N x 3 x 32 x 32 and int64 labels N."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: np.ndarray, std: np.ndarray,
                 device: torch.device):
        self.images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
        self.labels = torch.from_numpy(labels).to(device)
        # Shapes 1 x 3 x 1 x 1 so they broadcast over a batch; pixels are scaled to [0, 1] first.
        self.mean = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)

    @classmethod
    def random(cls, n: int, device: torch.device, seed: int = 0, num_classes: int = 100) -> DeviceSplit:
        """n random uint8 images with random labels: for timing and for tests of the step, not for learning."""
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
        mean, std = channel_stats(images)
        return cls(images, rng.integers(0, num_classes, size=n), mean, std, device)

    def __len__(self) -> int:
        return len(self.labels)

    def normalize(self, images_u8: torch.Tensor) -> torch.Tensor:
        return (images_u8.float() / 255.0 - self.mean) / self.std

    def train_batches(self, batch_size: int, generator: torch.Generator):
        """One epoch: a fresh permutation, per-image random crop + flip, normalised. Last partial batch kept."""
        order = torch.randperm(len(self), generator=generator, device=self.images.device)
        for start in range(0, len(self), batch_size):
            idx = order[start:start + batch_size]
            yield self.normalize(random_crop_flip(self.images[idx], generator)), self.labels[idx]

    def eval_batches(self, batch_size: int):
        """Fixed order, no augmentation."""
        for start in range(0, len(self), batch_size):
            yield self.normalize(self.images[start:start + batch_size]), self.labels[start:start + batch_size]


def random_crop_flip(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per image: zero-pad 4 px, crop a random 32x32 window, flip horizontally with p = 0.5.

    Same distribution as torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip(), as one gather.
    images: uint8 B x C x H x W -> uint8 B x C x H x W.
    """
    b, _, h, w = images.shape
    device = images.device
    padded = torch.nn.functional.pad(images, (PAD, PAD, PAD, PAD))  # B x C x (H+8) x (W+8), zeros
    top = torch.randint(0, 2 * PAD + 1, (b, 1), generator=generator, device=device)
    left = torch.randint(0, 2 * PAD + 1, (b, 1), generator=generator, device=device)
    flip = torch.rand((b, 1), generator=generator, device=device) < 0.5
    rows = top + torch.arange(h, device=device)  # B x H
    cols = torch.arange(w, device=device).expand(b, w)
    cols = left + torch.where(flip, w - 1 - cols, cols)  # B x W, reversed for flipped images
    batch = torch.arange(b, device=device)[:, None, None]
    # Advanced indexing puts the B x H x W index dims first: B x H x W x C, back to B x C x H x W.
    return padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
