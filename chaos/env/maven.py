"""Pinned jars from Maven Central, resolved once into the cache and reused.

Each set of artifacts (the broker, the Connect runtime, a Connect plug-in) gets a directory of its
own with a generated `pom.xml`; `mvn dependency:copy-dependencies` fills its `libs/`. The marker
holds the pom it was resolved from, so an interrupted resolution, or a changed pin, is redone
rather than half-used.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from chaos.errors import EnvironmentFailure
from drivers.engines import Artifact

MAVEN_TIMEOUT = 1800
"""Seconds one resolution may take on a cold cache."""


def resolve_jars(target: Path, name: str, artifacts: tuple[Artifact, ...], what: str,
                 exclude: tuple[str, ...] = (), verbose: bool = False, instead: str = "") -> list[Path]:
    """The jars of `artifacts` and their runtime dependencies (less the `exclude`d artifact ids), in
    `target/libs`, resolved now unless this exact pom was resolved there before. `instead` says what a
    user without Maven can do instead, in the error."""
    libs = target / "libs"
    marker = target / ".complete"
    pom = _pom(name, artifacts)
    if not (marker.exists() and marker.read_text() == pom):
        mvn = shutil.which("mvn")
        if mvn is None:
            raise EnvironmentFailure("`mvn` was not found on PATH. Install Apache Maven (Debian: apt-get install "
                                     f"maven) to resolve {what}{', ' + instead if instead else ''}.")
        target.mkdir(parents=True, exist_ok=True)
        marker.unlink(missing_ok=True)
        (target / "pom.xml").write_text(pom)
        shutil.rmtree(libs, ignore_errors=True)
        argv = [mvn, "-B", "-ntp" if verbose else "-q", "-f", str(target / "pom.xml"), "dependency:copy-dependencies",
                f"-DoutputDirectory={libs}", "-DincludeScope=runtime"]
        if exclude:
            argv.append(f"-DexcludeArtifactIds={','.join(exclude)}")
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=MAVEN_TIMEOUT)
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip().splitlines()
            raise EnvironmentFailure(f"resolving {what} from Maven Central failed (exit {proc.returncode})",
                                     "\n".join(output[-30:]))
        marker.write_text(pom)
    return sorted(libs.glob("*.jar"))


def _pom(name: str, artifacts: tuple[Artifact, ...]) -> str:
    return ("<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  <modelVersion>4.0.0</modelVersion>\n"
            f"  <groupId>chaos.provision</groupId>\n  <artifactId>{name}</artifactId>\n  <version>1</version>\n"
            "  <packaging>pom</packaging>\n  <dependencies>\n"
            + "".join(_dependency(a) for a in artifacts) + "  </dependencies>\n</project>\n")


def _dependency(artifact: Artifact) -> str:
    return (f"    <dependency><groupId>{artifact.group}</groupId><artifactId>{artifact.artifact}</artifactId>"
            f"<version>{artifact.version}</version></dependency>\n")
