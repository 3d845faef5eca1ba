"""The command line: help, and clear errors on bad arguments."""

import subprocess
import sys

import pytest

from intriguing.plumbing import cli


def test_module_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "intriguing", "--help"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0
    for command in ("data", "train", "reproduce", "bench", "assets"):
        assert command in out.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "FC999"], "name must be one of"),
        (["train"], "pass --all"),
        (["reproduce", "table99"], "unknown experiment"),
    ],
    ids=["unknown-model", "no-model", "unknown-experiment"],
)
def test_bad_arguments_exit_2_with_message(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_bad_scale_is_rejected_by_argparse(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "--all", "--scale", "huge"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
