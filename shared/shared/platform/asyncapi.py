"""Generate the committed AsyncAPI documents from code.

`python -m shared.platform.asyncapi` rewrites `services/<service>/asyncapi.yaml` for every
service; a test fails when a committed file and the code disagree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from shared.platform.runtime import definition_of

SERVICES = ("intake", "groups", "notifications", "news")


def render(service: str) -> str:
    definition = definition_of(service)
    runtime = definition.build_default().runtime
    specification = runtime.asyncapi(definition.description).to_specification()
    # FastStream's channel order is not stable between runs: sort for a reviewable diff.
    document: str = yaml.safe_dump(
        specification.to_jsonable(), sort_keys=True, allow_unicode=True, width=100
    )
    return document


def document_path(repo_root: Path, service: str) -> Path:
    return repo_root / "services" / service / "asyncapi.yaml"


def main(argv: list[str]) -> int:
    repo_root = Path(argv[1]) if len(argv) > 1 else Path.cwd()
    for service in SERVICES:
        path = document_path(repo_root, service)
        path.write_text(render(service), encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
