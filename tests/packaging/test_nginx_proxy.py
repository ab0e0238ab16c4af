"""The buffering proxy's config (examples/nginx/) is valid nginx, and compose mounts it in front."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from service.config import Settings
from tests.conftest import REPO_ROOT

CONFIG = REPO_ROOT / "examples" / "nginx" / "lbp-imaging-cds.conf"


@pytest.mark.skipif(
    shutil.which("nginx") is None, reason="nginx is not installed (apt-get install nginx-light)"
)
def test_the_proxy_config_is_valid_nginx(tmp_path: Path) -> None:
    server = CONFIG.read_text(encoding="utf-8").replace("server lbp-imaging-cds:8080;", "server 127.0.0.1:9;")
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path / 'nginx.pid'}; error_log {tmp_path / 'error.log'};\n"
        f"events {{}}\nhttp {{ client_body_temp_path {tmp_path}; proxy_temp_path {tmp_path};\n{server}\n}}\n"
    )
    result = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_compose_puts_the_buffering_proxy_in_front_with_this_config() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    proxy = compose["services"]["proxy"]
    assert proxy["profiles"] == ["proxy"]
    (mount,) = proxy["volumes"]
    assert (REPO_ROOT / mount["source"]).resolve() == CONFIG
    assert mount["read_only"] is True
    text = CONFIG.read_text(encoding="utf-8")
    assert "proxy_request_buffering on;" in text
    # The proxy refuses no body the service accepts, and none it would refuse reaches it.
    assert f"client_max_body_size {Settings().max_body_bytes // (1024 * 1024)}m;" in text
