"""The bad-input matrix: every hostile input in Testing/badinput/cases_*.py, run through the
``medseg`` command line in its own process, must give its exit status, one line naming the file
and the problem, no traceback, and leave its folder as it was (see Testing/badinput/harness.py).

The cases run in children forked from a clean interpreter that has the CLI imported (a C++ abort
kills only that child and shows as exit -6); a few also run through ``python -m MedSegCore`` to
show both ways give the same answer.
"""
from __future__ import annotations

import importlib
import pkgutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from badinput import harness

AREAS = sorted(m.name for m in pkgutil.iter_modules([str(harness.HERE)]) if m.name.startswith("cases_"))
CASES = [c for area in AREAS for c in importlib.import_module(f"badinput.{area}").CASES]
IDS = [c.id for c in CASES]
SUBPROCESS_IDS = ("image-nifti-truncated", "seg-gzip-truncated", "seg-huge-sizes", "option-method-with-levels")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every case once (two fork servers in parallel); {case id: (Result, folder)}."""
    servers = [harness.ForkServer() for _ in range(2)]
    base = tmp_path_factory.mktemp("badinput")

    def one(item):
        index, case = item
        if harness.skip_reason(case):
            return case.id, None
        folder = base / case.id
        return case.id, (harness.run_case(case, folder, servers[index % 2].run), folder)
    try:
        with ThreadPoolExecutor(2) as pool:
            return dict(pool.map(one, enumerate(CASES)))
    finally:
        for s in servers:
            s.close()


def test_matrix_is_large_and_unique():
    assert len(CASES) >= 150, len(CASES)
    assert len(set(IDS)) == len(IDS), [i for i in IDS if IDS.count(i) > 1]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_bad_input(case, results):
    reason = harness.skip_reason(case)
    if reason:
        pytest.skip(reason)
    result, folder = results[case.id]
    harness.check(case, result, folder)


@pytest.mark.parametrize("case_id", SUBPROCESS_IDS)
def test_console_entry_point_agrees(case_id, tmp_path):
    """The same case through ``python -m MedSegCore`` in a fresh interpreter."""
    case = next(c for c in CASES if c.id == case_id)
    result = harness.run_case(case, tmp_path, harness.run_subprocess)
    harness.check(case, result, tmp_path)
