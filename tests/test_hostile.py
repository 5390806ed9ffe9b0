"""The hostile suite (``benchmarks/hostile.py``) as tests: every case played end to end through the
command line, in real processes, against real local servers, with real signals and a real full disk;
each must end cleanly (no traceback, nothing lost, no key leaked, no hang, what a user needs).

Cases that still fail are listed in ``KNOWN_FAILURES`` (strict xfail: a case that starts passing must
leave the list). The counts of all outcomes are printed in the session's summary (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.hostile import CASES, Case, Harness, Verdict, counts_line, play

__all__ = ["KNOWN_FAILURES", "VERDICTS", "counts_line"]

# case name -> why it still fails
KNOWN_FAILURES: dict[str, str] = {}

VERDICTS: list[Verdict] = []


def case_params() -> Iterator[object]:
    for hostile_case in CASES:
        marks: list[pytest.MarkDecorator] = []
        if hostile_case.slow:
            marks.append(pytest.mark.slow)
        if hostile_case.name in KNOWN_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[hostile_case.name]))
        yield pytest.param(hostile_case, id=hostile_case.name, marks=marks)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    shared = Harness(tmp_path_factory.mktemp("hostile"))
    yield shared
    shared.close()


def test_there_are_at_least_60_cases_over_the_8_classes() -> None:
    assert len(CASES) >= 60
    assert {hostile_case.group for hostile_case in CASES} == set(range(1, 9))
    assert len({hostile_case.name for hostile_case in CASES}) == len(CASES)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("hostile_case", list(case_params()))
def test_hostile_case_ends_cleanly(harness: Harness, hostile_case: Case) -> None:
    if hostile_case.needs_mount and not harness.can_mount:
        pytest.skip("mounting a tmpfs (a real small disk) is not allowed here")
    verdict = play(harness, hostile_case)
    VERDICTS.append(verdict)
    assert verdict.outcome == "clean", "; ".join(verdict.reasons)
