"""Credentials in the key and in base URLs never reach the terminal through the CLI's log lines or errors."""

import logging

from sb3_llmae.cli import main
from sb3_llmae.cli.secrets import Redactor, secrets_of
from sb3_llmae.experts.llm.redaction import shown_url, url_credentials

KEY = "sk-secret-0123456789"


def test_url_credentials_finds_userinfo_and_credential_query_values():
    assert url_credentials(f"http://user:{KEY}@host/v1") == [KEY]
    assert url_credentials(f"http://{KEY}@host/v1") == [KEY]
    assert url_credentials(f"http://host/v1?api-key={KEY}&model=gpt") == [KEY]
    assert url_credentials("http://host:8080/v1?model=gpt") == []
    assert url_credentials(None) == []


def test_shown_url_replaces_the_credentials():
    assert shown_url(f"http://user:{KEY}@host:8080/v1") == "http://user:<redacted>@host:8080/v1"
    assert shown_url(f"http://host/v1?api-key={KEY}&api-version=2024") == (
        "http://host/v1?api-key=<redacted>&api-version=2024"
    )
    assert shown_url("http://127.0.0.1:11434/v1") == "http://127.0.0.1:11434/v1"


def test_secrets_of_takes_the_environment_and_both_encodings():
    redactor = Redactor(secrets_of("http://u:p%2Fss-word@h/v1", {"OPENAI_API_KEY": KEY}))
    assert redactor.redact(f"{KEY} p/ss-word p%2Fss-word") == "<redacted> <redacted> <redacted>"


def test_redactor_filters_log_records_and_their_tracebacks(caplog):
    redactor = Redactor([KEY])
    logger = logging.getLogger("sb3_llmae.test_secrets")
    caplog.handler.addFilter(redactor)
    try:
        logger.warning("request to %s failed", f"http://h/v1?api-key={KEY}")
        try:
            raise RuntimeError(f"echo {KEY}")
        except RuntimeError:
            logger.exception("boom")
    finally:
        caplog.handler.removeFilter(redactor)
    assert KEY not in caplog.text and "<redacted>" in caplog.text


def test_cli_errors_are_redacted(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    url = f"http://user:{KEY}@127.0.0.1:9/v1"
    args = [
        "generate",
        "--env",
        "MiniGrid-Empty-5x5-v0",
        "--expert",
        "llm",
        "--model",
        "m",
        "--episodes",
        "1",
    ]
    code = main([*args, "--base-url", url, "--max-retries", "0", "--no-cache", "--out", str(tmp_path / "d")])
    captured = capsys.readouterr()
    assert code == 2
    assert KEY not in captured.err + captured.out and "127.0.0.1:9" in captured.err
