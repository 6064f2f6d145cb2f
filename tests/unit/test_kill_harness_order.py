"""The kill harness's stage order comes from the library's stage registry: the same folders, in the
order `selftrain run` makes them, that the harness listed by hand before."""

import pytest

from tests.kill_harness import stage_order

TEACHER = ["gen_000/train", "lm", "gen_000/eval"]


@pytest.mark.parametrize("generations", [0, 1, 2, 3])
def test_the_offline_schedule_repeats_decode_select_audit_train_eval(generations):
    students = [f"gen_{g:03d}/{name}" for g in range(1, generations + 1)
                for name in ("decode", "select", "audit", "train", "eval")]
    assert stage_order(generations) == TEACHER + students


@pytest.mark.parametrize("generations", [0, 1, 2, 3])
def test_the_continuous_schedule_trains_one_student(generations):
    assert stage_order(generations, "continuous") == TEACHER + (["gen_001/train", "gen_001/eval"] if generations else [])
