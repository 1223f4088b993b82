"""One import namespace, from the editable install and from a built wheel."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def test_editable_install_maps_the_top_level_folders() -> None:
    import mevblade.control
    import mevblade.hw
    import mevblade.sim

    assert Path(mevblade.hw.__path__[0]).resolve() == REPO / "hw"
    assert Path(mevblade.control.__path__[0]).resolve() == REPO / "control"
    assert Path(mevblade.sim.__path__[0]).resolve() == REPO / "sim"


@pytest.mark.slow
def test_built_wheel_imports_mevblade() -> None:
    proc = subprocess.run(["bash", str(REPO / ".ci" / "wheel-check.sh")], capture_output=True, text=True,
                          timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "wheel ok" in proc.stdout
