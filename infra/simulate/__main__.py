"""`python -m infra.simulate`: run the scaling scenarios on a synthesized
template (`npx cdk synth` first) and print what each costs and how it went.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from infra.simulate import report, template
from infra.simulate.scenarios import run_all, scenarios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m infra.simulate",
        description=(
            "Simulate the fleets' scaling, minute by minute, on the alarms, policies and "
            "scalable targets of a synthesized template."
        ),
    )
    parser.add_argument(
        "--template", type=Path, help="a *.template.json (default: the one in cdk.out)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON rather than a table")
    parser.add_argument("--plot", type=Path, metavar="DIR", help="write one PNG a scenario")
    parser.add_argument("--scenario", action="append", help="run only this scenario (repeatable)")
    args = parser.parse_args(argv)
    try:
        stack = template.load(args.template or template.find_template())
    except (template.TemplateError, FileNotFoundError) as e:
        print(f"{parser.prog}: {e}", file=sys.stderr)
        return 2
    chosen = scenarios()
    if args.scenario:
        known = {s.name for s in chosen}
        unknown = sorted(set(args.scenario) - known)
        if unknown:
            print(
                f"{parser.prog}: unknown scenario(s) {unknown}; known: {sorted(known)}",
                file=sys.stderr,
            )
            return 2
        chosen = [s for s in chosen if s.name in args.scenario]
    results = run_all(stack, chosen)
    print(report.as_json(results) if args.json else report.table(results))
    if args.plot:
        for path in report.plot(results, args.plot):
            print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
