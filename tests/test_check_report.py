"""A check that raises because an answer was refused for its size is a plain FAIL with the
reason, not "the check itself broke" (review of #10, finding 12)."""

from __future__ import annotations

from kuscia_components.checks.report import Step, run_steps
from kuscia_components.kube.errors import AnswerTooLarge
from kuscia_components.peering.client import UnexpectedAnswer


def _raises(err: Exception) -> Step:
    def run() -> None:
        raise err

    return Step("api", run)  # type: ignore[arg-type]


def test_an_oversized_answer_is_a_fail_with_its_reason_not_a_broken_check() -> None:
    for err in (
        AnswerTooLarge("GET /api/v1/namespaces/x", 4 * 1024 * 1024),
        UnexpectedAnswer(
            "POST /api/v1/domain/query: the answer is longer than 4194304 bytes, so it was not read"
        ),
    ):
        [result] = run_steps([_raises(err)])
        assert result.failed and "longer than 4194304 bytes" in result.detail
        assert "broke" not in result.detail and "kubeconfig" in result.fix


def test_any_other_exception_is_still_reported_as_a_broken_check() -> None:
    [result] = run_steps([_raises(KeyError("a"))])
    assert result.failed and result.detail.startswith("the check itself broke: KeyError")
