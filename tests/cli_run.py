"""Running the command line inside a test: the exit code and what it printed, and the one-line error check."""

from symnet.frontend import cli


def run(capsys, *argv):
    """``(exit code, stdout, stderr)`` of ``symnet ARGV`` run in this process (arguments made strings)."""
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *needles):
    """Exit code 2 and exactly one line ``symnet: error: ...`` on stderr holding every needle."""
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("symnet: error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]


def fails(capsys, *argv, needles=()):
    """Run ``symnet ARGV`` and check :func:`one_line_error` with ``needles``."""
    code, _, err = run(capsys, *argv)
    one_line_error(code, err, *needles)
