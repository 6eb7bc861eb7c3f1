"""The one file hash: the raw files' data version and the artifacts' integrity check."""

import hashlib

from loan_default.lib.file_hash import file_sha256


def test_file_sha256_is_the_sha256_of_the_bytes_across_blocks(tmp_path):
    content = bytes(range(256)) * 5000  # more than one read block
    path = tmp_path / "f.bin"
    path.write_bytes(content)
    assert file_sha256(path) == hashlib.sha256(content).hexdigest()
