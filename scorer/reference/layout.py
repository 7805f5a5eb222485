"""Where the JVM projects (reference harness, mleap-served) live, how to build them and start their JVM."""

from __future__ import annotations

import fcntl
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from rtscore.errors import FailedPrecondition, Unavailable

MAIN_CLASS = "dev.rtscore.reference.ReferenceMain"
JAR_NAME = "rtscore-reference.jar"
_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PROJECT = _ROOT / "jvm" / "reference"
# MLeap's runtime behind a grpc-java server (`mleap-served`); its stubs come from these protos at build.
SERVED_PROJECT = _ROOT / "jvm" / "served"
SERVED_MAIN_CLASS = "dev.rtscore.served.ServedMain"
SERVED_JAR_NAME = "rtscore-served.jar"
SERVED_PROTOS = (
    _ROOT / "protos" / "rtscore" / "v1" / "frame.proto",
    _ROOT / "protos" / "rtscore" / "v1" / "scorer.proto",
)
# MLeap 0.20.0 runs on Java 17 without --add-opens; extra JVM flags (heap, GC) come from this variable.
JAVA_OPTS_ENV = "RTSCORE_REFERENCE_JAVA_OPTS"


@dataclass(frozen=True)
class HarnessLayout:
    """A Maven project around MLeap's runtime and the runnable layout it builds (jar plus target/lib)."""

    project: Path
    # Keyword-only, so `HarnessLayout(project)` and subclasses' positional fields stay as they were.
    jar_name: str = field(default=JAR_NAME, kw_only=True)
    main_class: str = field(default=MAIN_CLASS, kw_only=True)
    # Files outside the project that the build reads (a change makes the jar stale).
    inputs: tuple[Path, ...] = field(default=(), kw_only=True)
    title: str = field(default="the MLeap reference harness", kw_only=True)

    @classmethod
    def default(cls) -> HarnessLayout:
        """The project under `RTSCORE_REFERENCE_DIR`, else `jvm/reference` in this checkout."""
        return cls(Path(os.environ.get("RTSCORE_REFERENCE_DIR", DEFAULT_PROJECT)))

    @classmethod
    def served(cls) -> HarnessLayout:
        """`jvm/served`: MLeap's runtime behind a grpc-java `rtscore.v1.Scorer` server."""
        return cls(
            SERVED_PROJECT,
            jar_name=SERVED_JAR_NAME,
            main_class=SERVED_MAIN_CLASS,
            inputs=SERVED_PROTOS,
            title="mleap-served",
        )

    @property
    def jar(self) -> Path:
        """The project's own classes."""
        return self.project / "target" / self.jar_name

    @property
    def lib(self) -> Path:
        """MLeap's runtime and its dependencies, copied by maven-dependency-plugin."""
        return self.project / "target" / "lib"

    def is_built(self) -> bool:
        """Whether the jar and its dependency folder exist."""
        return self.jar.is_file() and self.lib.is_dir() and any(self.lib.glob("mleap-runtime_*.jar"))

    def is_stale(self) -> bool:
        """Whether the pom or a source file changed after the jar was built."""
        if not self.is_built():
            return True
        built = self.jar.stat().st_mtime
        sources = [self.project / "pom.xml", *(self.project / "src").rglob("*"), *self.inputs]
        return any(p.is_file() and p.stat().st_mtime > built for p in sources)

    def classpath(self) -> str:
        """The `java -cp` value; raises `Unavailable` when the harness was never built."""
        if not self.is_built():
            raise Unavailable(
                f"{self.title} is not built in {self.project}: "
                "run `rtscore reference build` (needs Maven and Maven Central once)"
            )
        return f"{self.jar}{os.pathsep}{self.lib / '*'}"

    def command(self, *args: str) -> list[str]:
        """The argv that runs one harness command."""
        options = shlex.split(os.environ.get(JAVA_OPTS_ENV, ""))
        return [java_executable(), *options, "-cp", self.classpath(), self.main_class, *args]

    def build(self, *, force: bool = False, timeout: float = 900.0) -> bool:
        """Run `mvn -q package` unless the jar is newer than the sources; True when Maven ran."""
        if not force and not self.is_stale():
            return False
        mvn = shutil.which("mvn")
        if mvn is None:
            raise Unavailable(f"Maven (`mvn`) is not on PATH: install Maven 3.8+ to build {self.title}")
        java_executable()
        pom = self.project / "pom.xml"
        if not pom.is_file():
            raise Unavailable(f"the project of {self.title} is missing: {pom} does not exist")
        lock_path = self.project / "target" / ".build.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with lock_path.open("w") as lock:
            # Two test runs at once would otherwise interleave Maven writes into one target/.
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not force and not self.is_stale():
                return False  # built by whoever held the lock before us
            self._run_maven(mvn, pom, timeout)
            # Maven may leave an unchanged jar untouched; its mtime is what marks the build as current.
            os.utime(self.jar)
        return True

    def _run_maven(self, mvn: str, pom: Path, timeout: float) -> None:
        try:
            done = subprocess.run(
                [mvn, "-q", "-B", "-f", str(pom), "package"],
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as err:
            raise Unavailable(f"building {self.title} took longer than {timeout:.0f} s") from err
        if done.returncode != 0:
            tail = " | ".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            raise FailedPrecondition(f"building {self.title} with Maven failed: {tail}")

    def ensure_runnable(self) -> None:
        """Build when Maven is present and the jar is stale; `Unavailable` when Java or the jar is missing."""
        java_executable()
        if shutil.which("mvn") is not None:
            self.build()
        self.classpath()


def java_executable() -> str:
    """`$JAVA_HOME/bin/java`, else `java` on PATH; raises `Unavailable` when neither exists."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise Unavailable("Java is not installed: put a Java 11+ `java` on PATH or set JAVA_HOME")
    return found
