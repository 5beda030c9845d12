"""The command line: `python -m chalicelib extract` (more commands arrive with later stages)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import nullcontext

from pydantic import ValidationError

from chalicelib.models import ExtractRequest, ExtractResult

log = logging.getLogger("chalicelib")


def extract_lines(lines: Iterable[str]) -> Iterator[ExtractResult]:
    """One result per input line, in order; a bad line gives an error result, never a crash."""
    from chalicelib.extract import extract
    from chalicelib.text import looks_like_text

    for number, line in enumerate(lines, 1):
        line_id = None
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise ValueError("a line must be a JSON object")
            line_id = str(data["id"]) if data.get("id") is not None else None
            request = ExtractRequest.model_validate(data)
            if not looks_like_text(request.text):
                raise ValueError("text looks like binary data, not an article")
            found = extract(request.text, request.lang)
            yield ExtractResult(id=request.id, lang=found.lang, events=found.events, nvidia_models=found.nvidia_models)
        except json.JSONDecodeError as exc:
            yield ExtractResult(id=None, error=f"line {number}: not JSON: {exc.msg} at column {exc.colno}")
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'line'}: {e['msg']}" for e in exc.errors())
            yield ExtractResult(id=line_id, error=f"line {number}: {problems}")
        except ValueError as exc:
            yield ExtractResult(id=line_id, error=f"line {number}: {exc}")
        except Exception as exc:  # an extractor bug must not shift every later line
            log.exception("extract failed on line %d", number)
            yield ExtractResult(id=line_id, error=f"line {number}: internal error: {type(exc).__name__}: {exc}")


def _cmd_extract(args: argparse.Namespace) -> int:
    failed = 0
    with open(args.input, encoding="utf-8", errors="replace") if args.input else nullcontext(sys.stdin) as source:
        for result in extract_lines(source):
            failed += result.error is not None
            if args.pretty:
                print(result.model_dump_json(indent=2, exclude_none=True), flush=True)
            else:
                print(json.dumps(result.model_dump(mode="json"), ensure_ascii=False), flush=True)
    if failed:
        print(f"extract: {failed} line(s) had errors (see their 'error' field)", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    extract = commands.add_parser(
        "extract",
        help="JSON lines of articles in, one JSON line of chip events out per line",
        description='Reads {"id","url","title","text","lang","published"} per line; '
        'writes {"id","lang","events","nvidia_models"} (or {"id","error"}) per line, same order.',
    )
    extract.add_argument("--input", help="read this file instead of standard input")
    extract.add_argument("--pretty", action="store_true", help="indented JSON, for reading")
    extract.set_defaults(run=_cmd_extract)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for stream in (sys.stdin, sys.stdout):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8", errors="replace")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
