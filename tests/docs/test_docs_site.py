"""The guides build as a site with `mkdocs build --strict`: every link and anchor resolves."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_site_builds_with_a_page_per_guide(tmp_path: Path) -> None:
    result = build(ROOT / "mkdocs.yml", tmp_path / "site")

    assert result.returncode == 0, result.stderr
    assert "WARNING" not in result.stderr
    for guide in sorted(DOCS.glob("*.md")):
        page = "index.html" if guide.stem == "index" else f"{guide.stem}/index.html"
        html = (tmp_path / "site" / page).read_text(encoding="utf-8")
        title = guide.read_text(encoding="utf-8").splitlines()[0].removeprefix("# ")
        assert title.replace("`", "") in html.replace("<code>", "").replace("</code>", "")
    # Files that are not pages are served as they are, for the guides to link to.
    for data in [*DOCS.glob("schemas/*.json"), *DOCS.glob("examples/*"), *DOCS.glob("img/*")]:
        assert (tmp_path / "site" / data.relative_to(DOCS)).read_bytes() == data.read_bytes()


@pytest.mark.parametrize(
    ("page", "text", "complaint"),
    [
        ("householder.md", "[gone](no-such-guide.md)", "no-such-guide.md"),
        ("householder.md", "[gone](#no-such-heading)", "#no-such-heading"),
        ("householder.md", "[gone](installer.md#no-such-step)", "#no-such-step"),
        ("orphan.md", "# A page outside the nav", "orphan.md"),
    ],
)
def test_a_broken_link_or_a_page_outside_the_nav_fails_the_build(
    tmp_path: Path, page: str, text: str, complaint: str
) -> None:
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs")
    with (tmp_path / "docs" / page).open("a", encoding="utf-8") as f:
        f.write(f"\n{text}\n")

    result = build(tmp_path / "mkdocs.yml", tmp_path / "site")

    assert result.returncode != 0
    assert complaint in result.stderr
