"""The ReasoningBank through the installed wheel: learn (plain and contrastive), patterns,
feedback, consolidation, context synthesis, and trajectory validation."""

from __future__ import annotations

from typing import Any, Dict

import pytest

from reasonbank import AgentMemory, ReasonbankError

DEPLOY: Dict[str, Any] = {
    "task": "deploy the web app to staging",
    "steps": [
        {"action": "run deploy.sh", "observation": "error: missing env var DATABASE_URL"},
        {"action": "export DATABASE_URL and rerun deploy.sh", "observation": "deployed"},
    ],
    "outcome": "success",
}


def test_learn_patterns_feedback_consolidate_synthesize(memory: AgentMemory) -> None:
    report = memory.learn(DEPLOY)
    assert report.verdicts[0].outcome == "success"
    assert len(report.experiences) == 1 and report.items
    item = report.items[0]
    assert item.kind in ("strategy", "pitfall", "insight") and item.status == "active"

    found = memory.find_similar_patterns("ship the site to staging", k=3)
    assert found and found[0].item.id in {i.id for i in report.items}
    assert 0.0 <= found[0].similarity <= 1.0
    assert memory.patterns is not None

    before = found[0].item.confidence
    after = memory.feedback(found[0].item.id, "success")
    assert after.successes >= 1.0 and after.confidence > before
    assert memory.feedback(found[0].item.id, 0.25).id == found[0].item.id
    with pytest.raises(ReasonbankError) as e:
        memory.feedback(found[0].item.id, "meh")  # type: ignore[arg-type]
    assert e.value.code == "RB_INVALID_INPUT"
    with pytest.raises(ReasonbankError) as e:
        memory.feedback("0190a0c2-5b1e-7c3d-8e4f-a1b2c3d4e5f6", "success")
    assert e.value.code == "RB_NOT_FOUND"

    dry = memory.consolidate(dry_run=True, duplicate_threshold=0.9)
    assert dry.dry_run and dry.written == 0 and dry.examined >= 1
    real = memory.consolidate(prune_below_confidence=0.01, prune_min_evidence=100.0)
    assert not real.dry_run
    flagged = memory.contradictions()
    assert len(flagged) == len(real.contradictions)
    assert all(c.a.id and c.b.id for c in flagged)

    ctx = memory.synthesize_context("deploy to staging", token_budget=256)
    assert ctx.tokens_used <= ctx.token_budget == 256
    assert ctx.items and "DATABASE_URL" in ctx.text
    with pytest.raises(ReasonbankError):
        memory.synthesize_context("x", shards=["../bad"])


def test_learn_contrastive(memory: AgentMemory) -> None:
    failed = dict(DEPLOY, steps=[{"action": "run deploy.sh", "observation": "error: missing env var"}], outcome="failure")
    report = memory.learn_contrastive(DEPLOY["task"], [DEPLOY, failed])
    assert report.items
    assert {v.outcome for v in report.verdicts} == {"success", "failure"}


def test_bad_trajectories_name_the_field(memory: AgentMemory) -> None:
    with pytest.raises(ReasonbankError) as e:
        memory.learn({"steps": []})
    assert e.value.code == "RB_INVALID_INPUT" and "task" in str(e.value)
    with pytest.raises(ReasonbankError) as e:
        memory.learn({"task": "t", "steps": [{"observation": "o"}]})
    assert e.value.code == "RB_INVALID_INPUT" and "action" in str(e.value)
    assert memory.stats().records == 0
