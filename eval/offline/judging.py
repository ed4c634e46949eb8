"""The judge's steps of an evaluation run (`eval.offline.run`): each reply rated on each rubric,
compared with `full`'s reply, and the human-rated responses rated, each journalled under a key
of what the judge saw."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

from eval.errors import EvalError
from eval.offline.inputs import digest, judge_context, persona_notes
from eval.offline.items import AnyItem, RatingItem, ReplyItem

if TYPE_CHECKING:
    from eval.offline.judge import Judge


class JudgeSteps(ABC):
    """Mixed into `Evaluation`, which journals the steps (`finished`, `record`)."""

    judge: Judge | None
    judge_name: str
    rubrics: list[str]

    @abstractmethod
    def output_key(self, item: AnyItem, system: str) -> str: ...

    @abstractmethod
    def finished(self, key: str, item: str | None = None) -> dict[str, Any] | None: ...

    @abstractmethod
    def record(self, record: dict[str, Any]) -> dict[str, Any]: ...

    def verdict_key(self, item: ReplyItem, system: str, rubric: str) -> str:
        """What the judge saw: the reply (its output's key), the persona notes, the rubric."""
        return digest("verdict", self.output_key(item, system), persona_notes(item), rubric,
                      self.judge_name)  # fmt: skip

    def pair_key(self, item: ReplyItem, system: str) -> str:
        return digest("pair", self.output_key(item, system), self.output_key(item, "full"),
                      persona_notes(item), self.judge_name)  # fmt: skip

    def rating_key(self, item: RatingItem) -> str:
        return digest("rating", item.context, item.response, self.judge_name)

    def verdicts(self, item: ReplyItem, system: str, output: dict[str, Any]) -> None:
        assert self.judge is not None
        if not output.get("reply") or output.get("crisis"):
            return
        for rubric in self.rubrics:
            key = self.verdict_key(item, system, rubric)
            if self.finished(key, item.id):
                continue
            try:
                verdict = self.judge.score(
                    rubric, context=judge_context(item), response=output["reply"],
                    persona=persona_notes(item),
                )  # fmt: skip
                found = {"scores": verdict.scores, "criteria": verdict.criteria}
            except EvalError as exc:
                found = {"error": str(exc)}
            self.record({"type": "verdict", "key": key, "item": item.id, "system": system,
                         "rubric": rubric, "judge": self.judge_name, **found})  # fmt: skip

    def compare(self, item: ReplyItem, system: str) -> None:
        assert self.judge is not None
        outputs = [self.finished(self.output_key(item, s)) or {} for s in (system, "full")]
        if not all(o.get("reply") and not o.get("crisis") for o in outputs):
            return  # nothing to compare, or a crisis reply (the judge rates none)
        mine, full = (o["reply"] for o in outputs)
        key = self.pair_key(item, system)
        if self.finished(key, item.id):
            return
        try:
            found = self.judge.compare(
                context=judge_context(item), first=mine, second=full, persona=persona_notes(item)
            )
            result: dict[str, Any] = {"outcome": found.outcome, "consistent": found.consistent}
        except EvalError as exc:
            result = {"error": str(exc)}
        self.record({"type": "pair", "key": key, "item": item.id, "system": system,
                     "against": "full", "judge": self.judge_name, **result})  # fmt: skip

    def rate(self, item: RatingItem) -> None:
        assert self.judge is not None
        key = self.rating_key(item)
        if self.finished(key, item.id):
            return
        try:
            verdict = self.judge.score("epitome", context=item.context, response=item.response)
            found = {"scores": verdict.scores, "criteria": verdict.criteria}
        except EvalError as exc:
            found = {"error": str(exc)}
        human: dict[str, list[float]] = {}
        for rating in item.ratings:
            human.setdefault(rating.dimension, []).append(rating.value)
        self.record({
            "type": "rating", "key": key, "item": item.id, "judge": self.judge_name,
            "human": {d: sum(v) / len(v) for d, v in human.items()}, **found,
        })  # fmt: skip
