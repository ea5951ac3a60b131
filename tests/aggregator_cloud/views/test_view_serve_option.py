"""`fractal-aggregator serve --carbon-intensity FILE`: a file that is not carbon-intensity data
stops serve before it starts anything, saying which entry is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aggregator_cloud.cli import main


def test_a_bad_carbon_file_stops_serve_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "intensity.json"
    bad.write_text(json.dumps({"data": [{"from": "2026-03-01T10:00Z", "to": "2026-03-01T10:30Z"}]}))

    code = main(["serve", "--data-dir", str(tmp_path / "data"), "--carbon-intensity", str(bad)])

    assert code == 1
    assert "data[0].intensity: expected an object" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # nothing was started or created
