"""A simulation for tests/test_simulate_resume.py to kill: `python -m tests.sim_child ROOT` runs (or
resumes) three scripted people on fakes, slowed a little so a SIGKILL lands mid-turn."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from tests.sim_fakes import SchemaRouterModel
from tests.test_simulate import THREE, simulation


class Slow(SchemaRouterModel):
    def _generate(self, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)
        return super()._generate(*args, **kwargs)


if __name__ == "__main__":
    simulation(Path(sys.argv[1]), THREE, model=Slow(), resume=True).run()
