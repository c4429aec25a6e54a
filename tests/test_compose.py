"""The production files: docker-compose.yml validates, the image runs as non-root with a
health check, and .env.example documents every setting."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.config import Settings

REPO = Path(__file__).resolve().parents[1]


def compose_command() -> list[str] | None:
    """`docker-compose` (Debian's package) or the `docker compose` plugin, if installed."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    return None


def project(tmp_path: Path, env: str) -> Path:
    """A copy of the Compose project with ``env`` as its .env file."""
    for name in ("docker-compose.yml", "Dockerfile", ".dockerignore"):
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / ".env").write_text(env)
    return tmp_path


def compose_config(where: Path) -> subprocess.CompletedProcess[str]:
    command = compose_command()
    if command is None:
        pytest.skip("neither docker-compose nor the docker compose plugin is installed")
    return subprocess.run(
        [*command, "config"], cwd=where, capture_output=True, text=True, timeout=60
    )


def env_names() -> list[str]:
    """The environment variable of every Settings field."""
    names = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias
        names.append(alias if isinstance(alias, str) else f"BRIEFBOT_{name.upper()}")
    return names


def test_compose_file_validates_with_the_example_env(tmp_path: Path) -> None:
    result = compose_config(project(tmp_path, (REPO / ".env.example").read_text()))
    assert result.returncode == 0, result.stderr
    rendered = result.stdout
    assert "image: postgres:16" in rendered
    assert "condition: service_healthy" in rendered
    assert "pg_isready" in rendered
    assert "pgdata:/var/lib/postgresql/data" in rendered
    assert re.search(
        r"BRIEFBOT_DATABASE_URL: postgresql://briefbot:[^@\s]+@db:5432/briefbot", rendered
    )


def test_compose_refuses_to_start_without_a_database_password(tmp_path: Path) -> None:
    example = (REPO / ".env.example").read_text()
    without = "\n".join(
        line for line in example.splitlines() if not line.startswith("POSTGRES_PASSWORD=")
    )
    result = compose_config(project(tmp_path, without))
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr + result.stdout


def test_the_image_runs_as_a_non_root_user_with_a_python_health_check() -> None:
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert stages and all(line.startswith("FROM python:3.11-slim") for line in stages)
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0", "0:0"}
    dockerfile = (REPO / "Dockerfile").read_text()
    health = dockerfile[dockerfile.index("HEALTHCHECK") :]
    assert "urllib.request" in health and "/healthz" in health and "curl" not in health


def test_every_setting_is_documented_in_env_example() -> None:
    example = (REPO / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    missing = [name for name in env_names() if name not in documented]
    assert not missing, f"not in .env.example: {missing}"
    assert "BRIEFBOT_LOG_FORMAT" in documented and "BRIEFBOT_DISCORD_GUILD" in documented
