"""The index in a real Chroma server (`chroma run` on a free loopback port)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import free_port

from assistant.cli import cli

CHROMA = Path(sys.executable).with_name("chroma")



@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory):
    port = free_port()
    server = subprocess.Popen([str(CHROMA), "run", "--path", str(tmp_path_factory.mktemp("srv")),
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):  # the server is up within seconds; bounded wait
            try:
                urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=1)
                break
            except OSError:
                time.sleep(0.25)
        else:
            pytest.fail("chroma server did not start")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_index_and_retrieve_through_a_chroma_server(fake_env, chroma_url):
    runner = CliRunner()
    first = runner.invoke(cli, ["--chroma-url", chroma_url, "index"])
    assert first.exit_code == 0 and "added" in first.stdout and chroma_url in first.stdout
    again = runner.invoke(cli, ["--chroma-url", chroma_url, "index"])
    assert "nothing embedded" in again.stdout
    hits = runner.invoke(cli, ["--chroma-url", chroma_url, "retrieve", "BERT masks tokens", "--json"])
    assert hits.exit_code == 0 and "15%" in hits.stdout


def test_unreachable_server_is_one_clear_line(fake_env):
    result = CliRunner().invoke(cli, ["--chroma-url", f"http://127.0.0.1:{free_port()}", "index"])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_malformed_server_url_is_refused(fake_env):
    result = CliRunner().invoke(cli, ["--chroma-url", "ftp://x", "index"])
    assert result.exit_code == 2 and "invalid chroma_url" in result.stderr


def test_a_shared_server_index_of_another_course_is_replaced_only_on_purpose(fake_env, chroma_url,
                                                                            tmp_path):
    other = tmp_path / "garden"
    other.mkdir()
    (other / "garden.md").write_text("## Tomatoes\n\nTomatoes need six hours of sun.\n")
    runner = CliRunner()
    assert runner.invoke(cli, ["--chroma-url", chroma_url, "index"]).exit_code == 0
    refused = runner.invoke(cli, ["--chroma-url", chroma_url, "--corpus", str(other), "retrieve",
                                  "tomatoes"])
    assert refused.exit_code == 2 and "holds another course" in refused.stderr
    assert runner.invoke(cli, ["--chroma-url", chroma_url, "--corpus", str(other),
                               "index"]).exit_code == 0
    hits = runner.invoke(cli, ["--chroma-url", chroma_url, "--corpus", str(other), "retrieve",
                               "tomatoes", "--json"])
    assert hits.exit_code == 0 and "garden.md" in hits.stdout and "course.md" not in hits.stdout
