"""Settings: the one module that reads and sets environment variables."""

import os
import subprocess
import sys
from pathlib import Path

from loan_default import settings

PACKAGE = Path(settings.__file__).parent


def test_cap_scoring_threads_sets_what_the_environment_leaves_unset(monkeypatch):
    for name in settings.SCORING_THREAD_VARIABLES:
        monkeypatch.setenv(name, "placeholder")
        monkeypatch.delenv(name)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    settings.cap_scoring_threads()
    assert os.environ["OMP_NUM_THREADS"] == "3"  # an explicit choice is kept
    assert os.environ["POLARS_MAX_THREADS"] == str(settings.API_SCORING_THREADS)


def test_the_server_caps_threads_before_any_scoring_library_loads():
    probe = (
        "import sys; from loan_default import settings; settings.cap_scoring_threads(); "
        "print(sorted({'polars', 'numpy', 'torch', 'sklearn'} & set(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"


def test_no_module_but_settings_touches_the_environment():
    readers = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        if any(word in path.read_text() for word in ("os.environ", "getenv"))
    ]
    assert readers == ["settings.py"]
