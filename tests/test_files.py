import pytest

from gtrxl_jax.files import write_text_whole


def test_a_write_that_fails_midway_leaves_the_old_file(tmp_path):
    path = tmp_path / "run_records.jsonl"
    write_text_whole(path, "old\n")
    with pytest.raises(UnicodeEncodeError):
        write_text_whole(path, "new\n" * 1000 + "\ud800")  # fails after writing some of it
    assert path.read_text() == "old\n"
    write_text_whole(path, "new\n")
    assert path.read_text() == "new\n"
