"""The CLI turns every expected mistake into one ``error:`` line (issue 11): errors, arguments, outputs."""

from __future__ import annotations

import pytest

import explorer.commands.convergence as convergence_command
from explorer.cli import main


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_os_errors_and_bugs_are_one_line(tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    rc = main(["convergence", "--sizes", "20", "--lams", "1", "--n-ref", "40", "--repeats", "1",
               "--out", str(blocker / "sub" / "conv.csv")])  # its parent folder cannot be made
    err = capsys.readouterr().err
    assert rc == 2 and len(error_lines(err)) == 1 and "Traceback" not in err, err

    def bug(args):
        raise TypeError("a bug")

    monkeypatch.setattr(convergence_command, "run", bug)
    monkeypatch.delenv("EXPLORER_DEBUG", raising=False)
    assert main(["convergence"]) == 1
    err = capsys.readouterr().err
    assert error_lines(err) == [error_lines(err)[0]] and "internal error (TypeError: a bug)" in err
    assert "EXPLORER_DEBUG=1" in err
    monkeypatch.setenv("EXPLORER_DEBUG", "1")
    with pytest.raises(TypeError, match="a bug"):  # a developer sees the traceback
        main(["convergence"])
