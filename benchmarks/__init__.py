"""govuk-imds benchmarks (issue 8): run with ``scripts/bench`` (or ``scripts/bench --quick`` while developing).

Every comparison runs both sides in the same run, alternating, and reports ratios as well as absolute figures.
Nothing here is imported by the test suite and no number is asserted anywhere: the output is
``docs/benchmarks.md`` (a table, the machine, the command), ``docs/benchmarks.png`` and the raw
``docs/benchmarks.json``.
"""
