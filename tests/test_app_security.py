"""Secrets, logins and exposure of the app: private files, server-side history, no open binding."""

from __future__ import annotations

import os
import stat

import pytest
from click.testing import CliRunner
from conftest import free_port

from assistant.errors import InputError
from assistant.ui.app import MAX_QUEUE, check_exposure, read_auth_file
from assistant.ui.history import HistoryStore, browser_secret, new_id


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_browser_secret_is_private_and_stable(tmp_path):
    first = browser_secret(tmp_path)
    assert mode(tmp_path / "browser-secret") == 0o600
    assert browser_secret(tmp_path) == first
    assert [p.name for p in tmp_path.iterdir()] == ["browser-secret"]  # no part file left


def test_an_empty_or_old_secret_file_is_handled(tmp_path, caplog):
    path = tmp_path / "browser-secret"
    path.write_text("")
    made = browser_secret(tmp_path)
    assert len(made) >= 32 and "empty" in caplog.text
    assert browser_secret(tmp_path) == made  # and kept from then on
    path.write_text("an-old-secret-written-world-readable")
    os.chmod(path, 0o644)
    assert browser_secret(tmp_path) == "an-old-secret-written-world-readable"
    assert mode(path) == 0o600


def test_history_lives_on_the_server_under_an_opaque_id(tmp_path, settings):
    from assistant.service import Service
    from assistant.ui.chat import ChatHandlers

    h = ChatHandlers(Service(settings), HistoryStore(tmp_path / "conv"))
    turn = {"question": "What is BERT?", "query": "What is BERT?", "answer": "A model.",
            "sources": []}
    key = h.keep("", [turn])
    assert len(key) >= 32 and h.restore(key)[1] == [turn]
    assert mode(tmp_path / "conv" / f"{key}.json") == 0o600
    # what a browser could send instead: a forged history, a path, another shape
    for forged in ([turn], "../../etc/passwd", new_id(), None, {"question": "x"}):
        assert h.restore(forged) == ([], [])
    assert h.clear(key)[1] == [] and h.restore(key)[1] == []


def test_the_history_folder_is_bounded(tmp_path):
    store = HistoryStore(tmp_path, max_turns=3, max_conversations=5)
    keys = [new_id() for _ in range(8)]
    for key in keys:
        store.save(key, [{"question": str(n)} for n in range(10)])
    assert len(list(tmp_path.glob("*.json"))) == 5
    assert [t["question"] for t in store.load(keys[-1])] == ["7", "8", "9"]


@pytest.mark.parametrize("host, auth, ok", [
    ("127.0.0.1", None, True), ("localhost", None, True), ("::1", None, True),
    ("0.0.0.0", None, False), ("192.168.1.5", None, False), ("0.0.0.0", ("a", "b"), True),
])
def test_serving_beyond_this_machine_needs_a_login(host, auth, ok):
    if ok:
        assert check_exposure(host, auth) is None
    else:
        with pytest.raises(InputError, match="without a login"):
            check_exposure(host, auth)
        assert "WITHOUT a login" in check_exposure(host, auth, allow_open=True)


def test_the_login_comes_from_a_private_file(tmp_path):
    path = tmp_path / "auth"
    path.write_text("ada:s3cret\n")
    os.chmod(path, 0o644)
    with pytest.raises(InputError, match="chmod 600"):
        read_auth_file(path)
    os.chmod(path, 0o600)
    assert read_auth_file(path) == ("ada", "s3cret")
    path.write_text("")
    with pytest.raises(InputError, match="USER:PASSWORD"):
        read_auth_file(path)


@pytest.mark.parametrize("args, message", [
    (["app", "--auth", "ada:s3cret"], "shows the password"),
    (["app", "--host", "0.0.0.0"], "without a login"),
])
def test_the_app_command_refuses_unsafe_options(fake_env, args, message):
    from assistant.cli import cli

    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and message in result.output


@pytest.mark.parametrize("command", [["app"], ["serve-api"]])
def test_a_default_model_whose_weights_are_absent_stops_the_start_in_one_line(
        fake_env, monkeypatch, command):
    import uvicorn

    from assistant import ui
    from assistant.cli import cli

    started = []
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(ui, "launch", lambda *a, **kw: started.append("app"))
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: started.append("api"))
    result = CliRunner().invoke(cli, command + ["--model", "hf:nobody/not-on-this-machine"])
    assert result.exit_code == 2 and "are not on this machine" in result.stderr, result.output
    assert started == [] and "Traceback" not in result.output


def test_the_queue_is_bounded_and_uploads_leave_no_temp_files(settings, tmp_path):
    from assistant.service import Service
    from assistant.ui import launch
    from assistant.ui.corpus import _read_and_delete

    demo = launch(Service(settings), port=free_port())
    try:
        assert demo._queue.max_size == MAX_QUEUE
    finally:
        demo.close()
    temp = tmp_path / "upload.md"
    temp.write_text("# Notes\n\ntext\n")
    assert _read_and_delete(temp) == b"# Notes\n\ntext\n" and not temp.exists()


def test_the_cli_removes_only_added_files(fake_env, tmp_path):
    from assistant.cli import cli
    from assistant.corpus.uploads import add_files

    add_files([("pruning.md", b"# Pruning\n\nPruning removes weights.\n")], fake_env)
    assert CliRunner().invoke(cli, ["corpus", "added"]).output.split() == ["pruning.md"]
    refused = CliRunner().invoke(cli, ["corpus", "remove", "../../etc/passwd"])
    assert refused.exit_code == 2 and "added from the app" in refused.output
    done = CliRunner().invoke(cli, ["corpus", "remove", "pruning.md"])
    assert done.exit_code == 0, done.output
    assert not (fake_env / "pruning.md").exists()


def test_the_operator_allows_more_models_with_allow_model(fake_env, monkeypatch):
    import assistant.ui as ui
    from assistant.cli import cli

    seen = {}

    class Demo:
        def block_thread(self):
            pass

        def close(self):
            pass

    def launch(service, *args, **kwargs):
        seen["service"] = service
        return Demo()

    monkeypatch.setattr(ui, "launch", launch)
    result = CliRunner().invoke(cli, ["app", "--allow-model", "openai:m@http://127.0.0.1:9/v1"])
    assert result.exit_code == 0, result.output
    service = seen["service"]
    assert service.check_model("openai:m@http://127.0.0.1:9/v1")
    with pytest.raises(InputError):
        service.check_model("openai:other@http://127.0.0.1:9/v1")


def test_a_long_conversation_in_any_script_survives_a_reload(tmp_path):
    store = HistoryStore(tmp_path, max_turns=100)
    key = new_id()
    turns = [{"question": f"q{n}", "answer": "— " * 9000} for n in range(50)]  # 3 bytes a dash
    store.save(key, turns)
    kept = store.load(key)
    assert kept and kept[-1]["question"] == "q49"  # the newest turns that fit, never nothing
