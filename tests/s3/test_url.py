"""The storage url and where the secret comes from: the url, TCD_S3_SECRET, or a file only its
owner may read. No message ever repeats the secret."""
from __future__ import annotations

import os

import pytest

from archive import open_archive
from archive.config import Settings
from archive.errors import StorageError
from archive.s3store import S3Store, parse_url
from archive.store import LocalStore, open_store

SECRET = "s3cr3t/with+odd=chars"


def settings(tmp_path, env=None, secret_file="") -> Settings:
    return Settings(home=tmp_path, storage_secret_file=secret_file, env=env or {})


def test_the_url_gives_endpoint_bucket_and_options(tmp_path):
    store = S3Store.from_url("s3://AK:pw@10.0.0.5:9000/tcd-archive?secure=false&part_mb=32",
                             settings(tmp_path))
    assert (store.endpoint, store.access_key, store.bucket, store.secure) == \
        ("10.0.0.5:9000", "AK", "tcd-archive", False)
    assert store.part_size == 32 * 1024 * 1024
    assert store.describe() == "s3://AK@10.0.0.5:9000/tcd-archive?secure=false"
    assert parse_url("s3://AK@s3.example.org/b1b")["secure"] is True


def test_a_percent_encoded_secret_in_the_url_is_decoded(tmp_path):
    parts = parse_url("s3://AK:s3cr3t%2Fwith%2Bodd%3Dchars@h:1/bkt")
    assert parts["secret"] == SECRET


def test_the_secret_comes_from_the_environment(tmp_path):
    store = S3Store.from_url("s3://AK@h:9000/bkt", settings(tmp_path, {"TCD_S3_SECRET": SECRET}))
    assert SECRET not in repr(store) and SECRET not in store.describe()


def test_the_secret_comes_from_a_private_file(tmp_path):
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n")
    os.chmod(path, 0o600)
    store = S3Store.from_url("s3://AK@h:9000/bkt", settings(tmp_path, secret_file="secret"))
    assert store.access_key == "AK"


def test_a_secret_file_others_may_read_is_refused(tmp_path):
    path = tmp_path / "secret"
    path.write_text(SECRET)
    os.chmod(path, 0o644)
    with pytest.raises(StorageError, match=r"may be read by other users \(mode 0644\); run `chmod 600") as err:
        S3Store.from_url("s3://AK@h:9000/bkt", settings(tmp_path, secret_file=str(path)))
    assert SECRET not in str(err.value)


def test_a_missing_secret_says_where_to_put_it(tmp_path):
    with pytest.raises(StorageError, match="No secret for the S3 access key 'AK': set TCD_S3_SECRET"):
        S3Store.from_url("s3://AK@h:9000/bkt", settings(tmp_path))
    with pytest.raises(StorageError, match="Could not read the S3 secret file"):
        S3Store.from_url("s3://AK@h:9000/bkt", settings(tmp_path, secret_file="nowhere"))


@pytest.mark.parametrize("url, problem", [
    ("http://AK:pw@h:1/bkt", "must start with s3://"),
    ("s3://h:1/bkt", "access key is missing"),
    ("s3://AK:pw@h:port/bkt", "port is not a number"),
    ("s3://AK:pw@h:1/", "exactly one bucket"),
    ("s3://AK:pw@h:1/bkt/sub", "exactly one bucket"),
    ("s3://AK:pw@h:1/bkt?secure=maybe", "secure must be true or false"),
    ("s3://AK:pw@h:1/bkt?speed=max", "unknown option speed"),
    ("s3://AK:pw@h:1/Bad_Bucket", "not an S3 bucket name"),
    ("s3://AK:pw@h:1/bkt?part_mb=1", "part size must be at least 5 MiB"),
])
def test_bad_urls_are_one_sentence_without_the_secret(tmp_path, url, problem):
    with pytest.raises(StorageError, match=problem) as err:
        S3Store.from_url(url, settings(tmp_path))
    assert "pw" not in str(err.value).replace("password", "")


def test_open_store_picks_the_backend_from_the_settings(tmp_path):
    assert isinstance(open_store(settings(tmp_path)), LocalStore)
    arch = open_archive(tmp_path / "home", env={"TCD_STORAGE": "s3://AK@h:9000/bkt", "TCD_S3_SECRET": "x"})
    try:
        assert isinstance(arch.store, S3Store)
        assert arch.store.tmp_dir == arch.settings.staging_dir / "s3-tmp"
    finally:
        arch.catalog.close()
