import sys


def pytest_terminal_summary(terminalreporter):
    """The fuzz run's figures and the permission matrix's size, when they ran."""
    fuzz = sys.modules.get("tests.contract.test_fuzz")
    stats = getattr(fuzz, "STATS", None)
    if stats and stats["requests"]:
        terminalreporter.write_line(
            f"fuzz: {stats['operations']} operations, {stats['requests']} requests ({stats['2xx']} 2xx, "
            f"{stats['4xx']} 4xx, {stats['5xx']} 5xx) in {stats['seconds']} s"
        )
    matrix = sys.modules.get("tests.contract.test_permission_matrix")
    line = matrix.summary_line() if matrix else None
    if line:
        terminalreporter.write_line(line)
