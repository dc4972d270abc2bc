"""pytest hooks for the plugin tests: the build timings are a report, not a test."""
import json
import os


def pytest_terminal_summary(terminalreporter):
    """Prints how long the builds took and writes them to <work dir>/timings.json."""
    import rpm_harness as h

    if not h.TIMINGS:
        return
    timings = {k: round(v, 2) for k, v in sorted(h.TIMINGS.items())}
    os.makedirs(h.WORK, exist_ok=True)
    with open(os.path.join(h.WORK, "timings.json"), "w") as f:
        json.dump(timings, f, indent=1)
    terminalreporter.write_line("build timings (seconds):")
    for label, seconds in timings.items():
        terminalreporter.write_line(f"  {label:55s} {seconds:6.2f}")
