"""The real data sets the suite trains and tests on, found where papernets itself looks for them.

A test that needs MNIST or Fashion-MNIST is marked `@pytest.mark.real_data("mnist")` (or takes the
`mnist_dir` / `fashion_mnist_dir` fixtures, which add the mark). Before anything runs, the selected tests' data
sets are looked up once; when one is missing the run stops with one line naming the command that installs it —
never a wall of fixture errors. `make test` runs `make data` first, so this only fires when pytest is run alone.
"""

from pathlib import Path

import pytest

from papernets.data.catalog import get_spec
from papernets.data.locate import locate_dataset
from papernets.errors import DatasetError

REAL_DATA_FIXTURES = {"mnist_dir": "mnist", "fashion_mnist_dir": "fashion-mnist"}


def real_data_folder(name: str) -> Path | None:
    """The folder holding the data set's files, found as `papernets data info NAME` finds it, or None."""
    try:
        return locate_dataset(get_spec(name)).folder
    except DatasetError:
        return None


def dataset_flags(name: str) -> list[str]:
    """`--dataset NAME --data-dir FOLDER` for a command line, naming the folder so that a test's private cache
    (XDG_CACHE_HOME in a temporary folder) does not hide data that `make data` put in the user cache."""
    return ["--dataset", name, "--data-dir", str(real_data_folder(name))]


def pytest_configure(config):
    config.addinivalue_line("markers", "real_data(*names): the test reads these real data sets (make data)")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Marks the tests that take a real-data fixture, before `-m` selects (so `-m "not real_data"` leaves them out)."""
    for item in items:
        for fixture, name in REAL_DATA_FIXTURES.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.real_data(name))


def pytest_collection_finish(session):
    """After selection: the data sets the selected tests read must all be found, or the run stops in one line."""
    needed = {name for item in session.items for mark in item.iter_markers("real_data") for name in mark.args}
    missing = sorted(name for name in needed if real_data_folder(name) is None)
    if missing:
        pytest.exit(f"the selected tests need the real data set(s) {', '.join(missing)}, which papernets cannot find; "
                    f"run `make data` (or `papernets data download {' '.join(missing)}`) first.", returncode=4)


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    return real_data_folder("mnist")


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    return real_data_folder("fashion-mnist")
