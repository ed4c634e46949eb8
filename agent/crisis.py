"""What a crisis gets instead of an ordinary reply: a fixed, warm text and crisis lines.

The texts are in `safety_data/replies.toml` and the lines per locale in
`safety_data/resources.toml` (an unknown locale gets the international list). The screen that
decides a message is a crisis is `agent.safety`.
"""

from __future__ import annotations

import json
import zlib

from agent.safety import _read_toml
from agent.schemas import CrisisResource, CrisisResources, SafetyAssessment

DEFAULT_LOCALE = "international"
MAX_RESOURCES = 4


def locale_key(locale: str) -> str:
    """Map "en_US.UTF-8", "en-GB", "GB" or "uk" to a table name in resources.toml."""
    code = locale.strip().lower().split(".")[0].replace("-", "_")
    return code.rsplit("_", 1)[-1] if "_" in code and len(code) <= 6 else code


def crisis_resources(locale: str, category: str | None = None) -> CrisisResources:
    """Return the crisis lines for a locale (unknown: international), fitted to a category."""
    tables = _read_toml("resources.toml")
    key = locale_key(locale)
    key = tables.get("aliases", {}).get(key, key)
    if key == "aliases" or key not in tables:
        key = DEFAULT_LOCALE
    table = tables[key]
    chosen = [r for r in table["resources"] if _fits(r["categories"], category)]
    chosen.sort(key=lambda r: r["categories"][0] != category)
    resources = [CrisisResource.model_validate(r) for r in chosen]
    return CrisisResources(locale=key, emergency=table["emergency"], resources=resources)


def _fits(categories: list[str], category: str | None) -> bool:
    return category in (None, "none") or "all" in categories or category in categories


def check_in_line(assessment: SafetyAssessment, resources: CrisisResources) -> str:
    """One gentle line for an "uncertain" screen: are you safe, and where help is."""
    lines = _read_toml("replies.toml")["check_in"]["lines"]
    seed = zlib.crc32(json.dumps([assessment.category, assessment.signals]).encode())
    first = resources.resources[0] if resources.resources else None
    resource = f"{first.name} ({first.contact})" if first else "a crisis line"
    return str(lines[seed % len(lines)]).format(resource=resource, emergency=resources.emergency)


def crisis_reply(
    assessment: SafetyAssessment, resources: CrisisResources, name: str | None = None
) -> str:
    """Write the deterministic crisis reply: presence, a safety question, the resources."""
    texts = _read_toml("replies.toml")
    category = assessment.category if assessment.category != "none" else "suicide"
    part = texts[category]
    seed = zlib.crc32(json.dumps([name, category, assessment.signals]).encode())
    fill = {"name_comma": f"{name}, " if name else "", "emergency": resources.emergency}
    opening = part["openings"][seed % len(part["openings"])].format(**fill)
    lines = [
        f"- {r.name}: {r.contact}" + (f" ({r.note})" if r.note else "")
        for r in resources.resources[:MAX_RESOURCES]
    ]
    blocks = [
        f"{opening[0].upper()}{opening[1:]} {texts['common']['presence']}",
        part["question"].format(**fill),
        "\n".join([texts["common"]["resources_intro"], *lines]) if lines else "",
        (texts["common"]["ai_note"] + " " if category == "medical_emergency" else "")
        + part["close"],
    ]
    return "\n\n".join(block for block in blocks if block)
