"""Running `flask ...` commands in-process and judging their outcome."""

from __future__ import annotations


def invoke(app, args: list[str], **kwargs):
    """Run a command through Flask's CLI test runner, as `flask --app wsgi ...` would."""
    return app.test_cli_runner().invoke(args=args, **kwargs)


def ok(result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def refused(result, *fragments: str) -> str:
    """A clear refusal: a non-zero exit, no traceback, and each fragment in the output."""
    assert result.exit_code != 0, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), (
        f"a traceback, not a clear error: {result.exception!r}")
    for fragment in fragments:
        assert fragment.lower() in result.output.lower(), result.output
    return result.output
